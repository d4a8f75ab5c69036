//! Whole flows through async-stripe and the hosted pages: Checkout in both modes with Stripe's
//! test cards (declines and the 3-D Secure step included), trials, renewals and failed payments
//! on a test clock, plan changes with proration, the customer portal, refunds and off-session
//! charges.

use std::collections::HashMap;

use stripe::StripeError;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
    CreatePreviewInvoiceSubscriptionDetailsItems, ListInvoice,
};
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionTrialSettings, CreateSubscriptionTrialSettingsEndBehavior,
    CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod, RetrieveSubscription,
    UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionProrationBehavior,
};
use stripe_billing::test_helpers_test_clock::{
    AdvanceTestHelpersTestClock, CreateTestHelpersTestClock,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentMethodCollection, CreateCheckoutSessionSubscriptionData,
    ExpireCheckoutSession, RetrieveCheckoutSession,
};
use stripe_core::customer::{CreateCustomer, UpdateCustomer, UpdateCustomerInvoiceSettings};
use stripe_core::payment_intent::{CreatePaymentIntent, RetrievePaymentIntent};
use stripe_core::refund::CreateRefund;
use stripe_payment::payment_method::AttachPaymentMethod;
use stripe_product::price::CreatePrice;
use stripe_product::product::CreateProduct;
use stripe_shared::{CheckoutSessionMode, Customer, Price, Subscription};

use super::api::monthly_price;
use super::{session_id_from, TestEmulator};

const DAY: i64 = 86_400;

fn item(price: &Price, quantity: u64) -> CreateCheckoutSessionLineItems {
    let mut item = CreateCheckoutSessionLineItems::new();
    item.price = Some(price.id.as_str().to_owned());
    item.quantity = Some(quantity);
    item
}

fn checkout(price: &Price, mode: CheckoutSessionMode, quantity: u64) -> CreateCheckoutSession {
    CreateCheckoutSession::new()
        .mode(mode)
        .line_items(vec![item(price, quantity)])
        .client_reference_id("org_42")
        .metadata(HashMap::from([("org_id".to_owned(), "42".to_owned())]))
        .success_url("http://portal.test/billing/success?session_id={CHECKOUT_SESSION_ID}")
        .cancel_url("http://portal.test/billing/cancel")
}

async fn customer_with_card(emu: &TestEmulator, clock: Option<&str>, token: &str) -> Customer {
    let mut create = CreateCustomer::new().email("owner@acme.test");
    if let Some(clock) = clock {
        create = create.test_clock(clock);
    }
    let customer = create.send(&emu.stripe).await.expect("customer");
    let pm = AttachPaymentMethod::new(token)
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("attach test card");
    let mut settings = UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(pm.id.as_str().to_owned());
    UpdateCustomer::new(customer.id.clone())
        .invoice_settings(settings)
        .send(&emu.stripe)
        .await
        .expect("default card")
}

fn sub_item(price: &Price) -> CreateSubscriptionItems {
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.id.as_str().to_owned());
    item
}

/// A test clock at [`START`], a customer on it with a working card, and a paid subscription.
async fn subscribed_on_a_clock(
    emu: &TestEmulator,
    price: &Price,
) -> (String, Customer, Subscription) {
    let clock = emu.clock(START).await;
    let customer = customer_with_card(emu, Some(&clock), "pm_card_visa").await;
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![sub_item(price)])
        .send(&emu.stripe)
        .await
        .expect("subscription");
    (clock, customer, sub)
}

fn period_end(sub: &Subscription) -> i64 {
    sub.items.data[0].current_period_end
}

#[tokio::test]
async fn a_trial_starts_through_checkout_without_a_card() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Pro", 9900, "pro").await;
    let mut data = CreateCheckoutSessionSubscriptionData::new();
    data.trial_period_days = Some(7);
    let session = checkout(&price, CheckoutSessionMode::Subscription, 1)
        .subscription_data(data)
        .payment_method_collection(CreateCheckoutSessionPaymentMethodCollection::IfRequired)
        .customer_email("owner@acme.test")
        .send(&emu.stripe)
        .await
        .expect("session");
    assert_eq!(session.amount_total, Some(0));
    let url = session.url.clone().expect("url");
    let page = emu
        .http
        .get(&url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Start trial") && page.contains("7-day free trial"));

    // The trial counts from the payment, not from when the session was opened: let a second pass.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let done = emu.pay(&url, None, &[]).await;
    assert_eq!(done.status(), 303);
    let location = done.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    assert_eq!(
        location,
        format!(
            "http://portal.test/billing/success?session_id={}",
            session.id.as_str()
        )
    );

    let session = RetrieveCheckoutSession::new(session_id_from(&location))
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert_eq!(
        session.status.map(|s| s.as_str().to_owned()).as_deref(),
        Some("complete")
    );
    assert_eq!(session.payment_status.as_str(), "no_payment_required");
    let sub_id = session
        .subscription
        .expect("subscription")
        .id()
        .as_str()
        .to_owned();
    let sub = RetrieveSubscription::new(sub_id)
        .send(&emu.stripe)
        .await
        .expect("subscription");
    assert_eq!(sub.status.as_str(), "trialing");
    let trial = sub.trial_end.expect("trial end") - sub.trial_start.expect("trial start");
    assert_eq!(trial, 7 * DAY);
    assert!(sub.default_payment_method.is_none());
    // The page is closed now.
    let closed = emu
        .http
        .get(&url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(closed.contains("no longer available"));
}

#[tokio::test]
async fn checkout_with_4242_creates_a_paid_subscription_and_an_invoice_with_working_links() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let session = checkout(&price, CheckoutSessionMode::Subscription, 1)
        .send(&emu.stripe)
        .await
        .expect("session");
    let done = emu
        .pay(
            session.url.as_deref().expect("url"),
            Some("4242 4242 4242 4242"),
            &[],
        )
        .await;
    assert_eq!(done.status(), 303);
    let session = RetrieveCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert_eq!(session.payment_status.as_str(), "paid");
    let customer = session.customer.expect("customer").id().as_str().to_owned();
    let sub =
        RetrieveSubscription::new(session.subscription.expect("sub").id().as_str().to_owned())
            .send(&emu.stripe)
            .await
            .expect("sub");
    assert_eq!(sub.status.as_str(), "active");
    assert_eq!(sub.metadata.len(), 0);

    let invoices = ListInvoice::new()
        .customer(customer)
        .send(&emu.stripe)
        .await
        .expect("invoices");
    assert_eq!(invoices.data.len(), 1);
    let invoice = &invoices.data[0];
    assert_eq!(invoice.status.as_ref().map(|s| s.as_str()), Some("paid"));
    assert_eq!(invoice.amount_paid, 999);
    assert!(invoice
        .number
        .as_deref()
        .is_some_and(|n| n.ends_with("-0001")));
    let hosted = emu
        .http
        .get(invoice.hosted_invoice_url.as_deref().expect("hosted url"))
        .send()
        .await
        .expect("page");
    assert!(hosted.text().await.expect("html").contains("$9.99"));
    let pdf = emu
        .http
        .get(invoice.invoice_pdf.as_deref().expect("pdf url"))
        .send()
        .await
        .expect("pdf");
    assert_eq!(pdf.headers()["content-type"], "application/pdf");
    assert!(pdf.bytes().await.expect("bytes").starts_with(b"%PDF-"));
}

#[tokio::test]
async fn declined_cards_leave_the_session_open_and_nothing_behind() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let session = checkout(&price, CheckoutSessionMode::Subscription, 1)
        .send(&emu.stripe)
        .await
        .expect("session");
    let url = session.url.clone().expect("url");

    let declined = emu.pay(&url, Some("4000 0000 0000 0002"), &[]).await;
    assert_eq!(declined.status(), 402);
    assert!(declined
        .text()
        .await
        .expect("html")
        .contains("Your card was declined."));
    let broke = emu.pay(&url, Some("4000 0000 0000 9995"), &[]).await;
    assert_eq!(broke.status(), 402);
    assert!(broke
        .text()
        .await
        .expect("html")
        .contains("insufficient funds"));
    let typo = emu.pay(&url, Some("4242 4242 4242 4241"), &[]).await;
    assert_eq!(typo.status(), 422);
    assert!(typo
        .text()
        .await
        .expect("html")
        .contains("card number is invalid"));

    let session = RetrieveCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert_eq!(
        session.status.map(|s| s.as_str().to_owned()).as_deref(),
        Some("open")
    );
    let subs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM stripe_emulator.objects WHERE kind IN ('subscription', 'customer')",
    )
    .fetch_one(&emu.pool)
    .await
    .expect("count");
    assert_eq!(subs, 0);

    // Then a good card goes through.
    assert_eq!(
        emu.pay(&url, Some("4242424242424242"), &[]).await.status(),
        303
    );
}

#[tokio::test]
async fn the_3d_secure_card_asks_for_confirmation_first() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let session = checkout(&price, CheckoutSessionMode::Subscription, 1)
        .send(&emu.stripe)
        .await
        .expect("session");
    let url = session.url.clone().expect("url");
    let card = Some("4000 0025 0000 3155");

    let step = emu.pay(&url, card, &[]).await;
    assert_eq!(step.status(), 200);
    let html = step.text().await.expect("html");
    assert!(html.contains("Complete authentication") && html.contains("Fail authentication"));

    let failed = emu.pay(&url, card, &[("authentication", "deny")]).await;
    assert_eq!(failed.status(), 402);
    assert!(failed
        .text()
        .await
        .expect("html")
        .contains("unable to authenticate"));

    let passed = emu.pay(&url, card, &[("authentication", "approve")]).await;
    assert_eq!(passed.status(), 303);
    let session = RetrieveCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert_eq!(session.payment_status.as_str(), "paid");
}

#[tokio::test]
async fn a_credit_pack_is_paid_in_payment_mode_and_can_be_refunded() {
    let emu = TestEmulator::start().await;
    let product = CreateProduct::new("500 credits")
        .send(&emu.stripe)
        .await
        .expect("product");
    let pack = CreatePrice::new(stripe_types::Currency::USD)
        .product(product.id.as_str())
        .unit_amount(2000)
        .lookup_key("credits_500")
        .send(&emu.stripe)
        .await
        .expect("price");
    let mut data = CreateCheckoutSessionPaymentIntentData::new();
    data.metadata = Some(HashMap::from([("credits".to_owned(), "1500".to_owned())]));
    let session = checkout(&pack, CheckoutSessionMode::Payment, 3)
        .payment_intent_data(data)
        .send(&emu.stripe)
        .await
        .expect("session");
    assert_eq!(session.amount_total, Some(6000));
    // Without a nickname, the product's name labels the line, as on Stripe's page.
    let page = emu
        .pay_page_text(session.url.as_deref().expect("url"))
        .await;
    assert!(page.contains("3 × 500 credits"), "{page}");
    assert_eq!(
        emu.pay(
            session.url.as_deref().expect("url"),
            Some("4242424242424242"),
            &[]
        )
        .await
        .status(),
        303
    );

    let session = RetrieveCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("retrieve");
    assert!(session.subscription.is_none());
    let intent_id = session
        .payment_intent
        .expect("payment intent")
        .id()
        .as_str()
        .to_owned();
    let intent = RetrievePaymentIntent::new(intent_id.clone())
        .send(&emu.stripe)
        .await
        .expect("intent");
    assert_eq!(intent.status.as_str(), "succeeded");
    assert_eq!(intent.amount_received, 6000);
    assert_eq!(
        intent.metadata.get("credits").map(String::as_str),
        Some("1500")
    );

    let refund = CreateRefund::new()
        .payment_intent(intent_id.clone())
        .amount(2000)
        .send(&emu.stripe)
        .await
        .expect("refund");
    assert_eq!(refund.amount, 2000);
    let too_much = CreateRefund::new()
        .payment_intent(intent_id)
        .amount(5000)
        .send(&emu.stripe)
        .await;
    assert!(
        matches!(too_much, Err(StripeError::Stripe(_, 400))),
        "{too_much:?}"
    );
}

#[tokio::test]
async fn expired_sessions_cannot_be_paid() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let session = checkout(&price, CheckoutSessionMode::Subscription, 1)
        .send(&emu.stripe)
        .await
        .expect("session");
    let expired = ExpireCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await
        .expect("expire");
    assert_eq!(
        expired.status.map(|s| s.as_str().to_owned()).as_deref(),
        Some("expired")
    );
    let page = emu
        .pay_page_text(session.url.as_deref().expect("url"))
        .await;
    assert!(page.contains("no longer available"));
    let twice = ExpireCheckoutSession::new(session.id.clone())
        .send(&emu.stripe)
        .await;
    assert!(matches!(twice, Err(StripeError::Stripe(_, 400))));
}

impl TestEmulator {
    async fn pay_page_text(&self, url: &str) -> String {
        self.http
            .get(url)
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html")
    }

    async fn clock(&self, start: i64) -> String {
        CreateTestHelpersTestClock::new(start)
            .send(&self.stripe)
            .await
            .expect("clock")
            .id
            .as_str()
            .to_owned()
    }

    async fn advance(&self, clock: &str, to: i64) {
        let clock = AdvanceTestHelpersTestClock::new(clock.to_owned(), to)
            .send(&self.stripe)
            .await
            .expect("advance");
        assert_eq!(clock.frozen_time, to);
    }

    async fn subscription(&self, id: &str) -> Subscription {
        RetrieveSubscription::new(id.to_owned())
            .send(&self.stripe)
            .await
            .expect("subscription")
    }

    async fn invoices(&self, customer: &Customer) -> Vec<stripe_shared::Invoice> {
        ListInvoice::new()
            .customer(customer.id.as_str())
            .send(&self.stripe)
            .await
            .expect("invoices")
            .data
    }
}

const START: i64 = 1_798_761_600; // 2027-01-01T00:00:00Z

#[tokio::test]
async fn trials_end_on_the_test_clock_with_and_without_a_card() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Pro", 9900, "pro").await;
    let clock = emu.clock(START).await;

    // Without a card: canceled at trial end.
    let bare = CreateCustomer::new()
        .test_clock(clock.as_str())
        .send(&emu.stripe)
        .await
        .expect("customer");
    let cancel = CreateSubscriptionTrialSettings::new({
        let mut end = CreateSubscriptionTrialSettingsEndBehavior::new();
        end.missing_payment_method =
            Some(CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod::Cancel);
        end
    });
    let no_card = CreateSubscription::new()
        .customer(bare.id.as_str())
        .items(vec![sub_item(&price)])
        .trial_period_days(7u32)
        .trial_settings(cancel)
        .send(&emu.stripe)
        .await
        .expect("trial without card");
    assert_eq!(no_card.status.as_str(), "trialing");
    assert_eq!(no_card.trial_end, Some(START + 7 * DAY));

    // With a card: continues, charged.
    let carded = customer_with_card(&emu, Some(&clock), "pm_card_visa").await;
    let with_card = CreateSubscription::new()
        .customer(carded.id.as_str())
        .items(vec![sub_item(&price)])
        .trial_period_days(7u32)
        .send(&emu.stripe)
        .await
        .expect("trial with card");

    emu.advance(&clock, START + 8 * DAY).await;
    let ended = emu.subscription(no_card.id.as_str()).await;
    assert_eq!(ended.status.as_str(), "canceled");
    let continued = emu.subscription(with_card.id.as_str()).await;
    assert_eq!(continued.status.as_str(), "active");
    assert_eq!(
        continued.items.data[0].current_period_start,
        START + 7 * DAY
    );
    let invoices = emu.invoices(&carded).await;
    assert_eq!(
        invoices.len(),
        2,
        "the $0 trial invoice and the first paid one"
    );
    assert_eq!(invoices[0].amount_paid, 9900);

    let notices = stripe_core::event::ListEvent::new()
        .type_("customer.subscription.trial_will_end")
        .send(&emu.stripe)
        .await
        .expect("events");
    assert_eq!(notices.data.len(), 2);
    assert!(notices.data.iter().all(|e| e.created == START + 4 * DAY));
}

#[tokio::test]
async fn renewals_charge_each_period_and_a_scheduled_cancellation_ends_it() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let (clock, customer, sub) = subscribed_on_a_clock(&emu, &price).await;
    assert_eq!(sub.status.as_str(), "active");
    let first_end = period_end(&sub);
    assert_eq!(first_end, 1_801_440_000); // 2027-02-01

    emu.advance(&clock, first_end + 3600).await;
    let renewed = emu.subscription(sub.id.as_str()).await;
    assert_eq!(renewed.items.data[0].current_period_start, first_end);
    assert_eq!(emu.invoices(&customer).await.len(), 2);

    // Cancel at period end, then change our mind, then cancel for real.
    let scheduled = UpdateSubscription::new(sub.id.clone())
        .cancel_at_period_end(true)
        .send(&emu.stripe)
        .await
        .expect("cancel later");
    assert!(scheduled.cancel_at_period_end);
    assert_eq!(scheduled.cancel_at, Some(period_end(&renewed)));
    let resumed = UpdateSubscription::new(sub.id.clone())
        .cancel_at_period_end(false)
        .send(&emu.stripe)
        .await
        .expect("resume");
    assert!(!resumed.cancel_at_period_end && resumed.cancel_at.is_none());
    UpdateSubscription::new(sub.id.clone())
        .cancel_at_period_end(true)
        .send(&emu.stripe)
        .await
        .expect("cancel later");
    emu.advance(&clock, period_end(&renewed) + 60).await;
    let ended = emu.subscription(sub.id.as_str()).await;
    assert_eq!(ended.status.as_str(), "canceled");
    assert_eq!(
        emu.invoices(&customer).await.len(),
        2,
        "no invoice for a canceled period"
    );
}

#[tokio::test]
async fn a_failed_renewal_goes_past_due_and_recovers_when_the_card_is_fixed_in_the_portal() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let (clock, customer, sub) = subscribed_on_a_clock(&emu, &price).await;
    // The card on file starts failing (saved fine, every charge declined).
    let failing = AttachPaymentMethod::new("pm_card_chargeCustomerFail")
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("attach");
    let mut settings = UpdateCustomerInvoiceSettings::new();
    settings.default_payment_method = Some(failing.id.as_str().to_owned());
    UpdateCustomer::new(customer.id.clone())
        .invoice_settings(settings)
        .send(&emu.stripe)
        .await
        .expect("default");

    emu.advance(&clock, period_end(&sub) + 60).await;
    let past_due = emu.subscription(sub.id.as_str()).await;
    assert_eq!(past_due.status.as_str(), "past_due");
    let open = emu.invoices(&customer).await.remove(0);
    assert_eq!(open.status.as_ref().map(|s| s.as_str()), Some("open"));
    assert_eq!(open.attempt_count, 1);
    assert_eq!(open.next_payment_attempt, Some(period_end(&sub) + 3 * DAY));

    // The customer puts in a working card through the portal: the invoice is paid at once.
    let portal = CreateBillingPortalSession::new()
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("portal");
    let page = emu
        .http
        .get(&portal.url)
        .send()
        .await
        .expect("portal page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("past_due") && page.contains("ending in 0341"));
    let updated = emu
        .http
        .post(format!("{}/card", portal.url))
        .form(&[
            ("card_number", "4242 4242 4242 4242"),
            ("card_expiry", "12/34"),
            ("card_cvc", "123"),
        ])
        .send()
        .await
        .expect("update card");
    assert_eq!(updated.status(), 303);
    let recovered = emu.subscription(sub.id.as_str()).await;
    assert_eq!(recovered.status.as_str(), "active");
    let paid = emu.invoices(&customer).await.remove(0);
    assert_eq!(paid.status.as_ref().map(|s| s.as_str()), Some("paid"));
}

#[tokio::test]
async fn unpaid_renewals_are_retried_then_the_subscription_is_canceled() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let (clock, customer, sub) = subscribed_on_a_clock(&emu, &price).await;
    let failing = AttachPaymentMethod::new("pm_card_chargeCustomerFail")
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("attach");
    UpdateSubscription::new(sub.id.clone())
        .default_payment_method(failing.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("sub default card");
    emu.advance(&clock, period_end(&sub) + 20 * DAY).await;
    let ended = emu.subscription(sub.id.as_str()).await;
    assert_eq!(ended.status.as_str(), "canceled");
    let invoice = emu.invoices(&customer).await.remove(0);
    assert_eq!(invoice.attempt_count, 4, "the first try and three retries");
    assert_eq!(invoice.next_payment_attempt, None);
}

#[tokio::test]
async fn plan_changes_prorate_and_the_preview_shows_the_amount_first() {
    let emu = TestEmulator::start().await;
    let starter = monthly_price(&emu, "Starter", 999, "starter").await;
    let pro = monthly_price(&emu, "Pro", 9900, "pro").await;
    let clock = emu.clock(START).await;
    let customer = customer_with_card(&emu, Some(&clock), "pm_card_visa").await;
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![sub_item(&starter)])
        .send(&emu.stripe)
        .await
        .expect("subscription");
    let half = START + (period_end(&sub) - START) / 2;
    emu.advance(&clock, half).await;

    let mut change = CreatePreviewInvoiceSubscriptionDetailsItems::new();
    change.id = Some(sub.items.data[0].id.as_str().to_owned());
    change.price = Some(pro.id.as_str().to_owned());
    let mut details = CreatePreviewInvoiceSubscriptionDetails::new();
    details.items = Some(vec![change]);
    details.proration_behavior = Some(stripe_billing::invoice::CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::AlwaysInvoice);
    let preview = CreatePreviewInvoice::new()
        .customer(customer.id.as_str())
        .subscription(sub.id.as_str())
        .subscription_details(details)
        .send(&emu.stripe)
        .await
        .expect("preview");
    // Half a month of Pro (49.50) less half a month of Starter (5.00, rounded).
    assert_eq!(preview.amount_due, 4450);

    let mut item = UpdateSubscriptionItems::new();
    item.id = Some(sub.items.data[0].id.as_str().to_owned());
    item.price = Some(pro.id.as_str().to_owned());
    let upgraded = UpdateSubscription::new(sub.id.clone())
        .items(vec![item])
        .proration_behavior(UpdateSubscriptionProrationBehavior::AlwaysInvoice)
        .send(&emu.stripe)
        .await
        .expect("upgrade");
    assert_eq!(upgraded.items.data[0].price.id, pro.id);
    let latest = emu.invoices(&customer).await.remove(0);
    assert_eq!(
        latest.amount_paid, preview.amount_due,
        "charged what the preview said"
    );

    let cancelled = CancelSubscription::new(sub.id.clone())
        .send(&emu.stripe)
        .await
        .expect("cancel now");
    assert_eq!(cancelled.status.as_str(), "canceled");
}

#[tokio::test]
async fn off_session_charges_succeed_or_decline_like_stripe() {
    let emu = TestEmulator::start().await;
    let good = customer_with_card(&emu, None, "pm_card_visa").await;
    let pm = good
        .invoice_settings
        .as_ref()
        .and_then(|s| s.default_payment_method.as_ref())
        .expect("pm")
        .id()
        .as_str()
        .to_owned();
    let paid = CreatePaymentIntent::new(2000, stripe_types::Currency::USD)
        .customer(good.id.as_str())
        .payment_method(pm)
        .off_session(stripe_core::payment_intent::CreatePaymentIntentOffSession::Bool(true))
        .confirm(true)
        .metadata(HashMap::from([("top_up".to_owned(), "1".to_owned())]))
        .send(&emu.stripe)
        .await
        .expect("off-session charge");
    assert_eq!(paid.status.as_str(), "succeeded");

    for (token, code) in [
        ("pm_card_chargeCustomerFail", "card_declined"),
        ("pm_card_authenticationRequired", "authentication_required"),
    ] {
        let bad = customer_with_card(&emu, None, token).await;
        let pm = bad
            .invoice_settings
            .as_ref()
            .and_then(|s| s.default_payment_method.as_ref())
            .expect("pm")
            .id()
            .as_str()
            .to_owned();
        let refused = CreatePaymentIntent::new(2000, stripe_types::Currency::USD)
            .customer(bad.id.as_str())
            .payment_method(pm)
            .off_session(stripe_core::payment_intent::CreatePaymentIntentOffSession::Bool(true))
            .confirm(true)
            .send(&emu.stripe)
            .await;
        match refused {
            Err(StripeError::Stripe(e, 402)) => {
                assert_eq!(e.type_.as_str(), "card_error");
                assert_eq!(e.code.as_ref().map(|c| c.as_str()), Some(code));
                assert_eq!(
                    e.payment_intent.as_ref().map(|pi| pi.status.as_str()),
                    Some("requires_payment_method")
                );
            }
            other => panic!("expected a 402 card error for {token}, got {other:?}"),
        }
    }

    // A card that is declined outright cannot even be saved.
    let customer = CreateCustomer::new()
        .send(&emu.stripe)
        .await
        .expect("customer");
    let refused = AttachPaymentMethod::new("pm_card_chargeDeclined")
        .customer(customer.id.as_str())
        .send(&emu.stripe)
        .await;
    assert!(
        matches!(refused, Err(StripeError::Stripe(_, 402))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_portal_cancels_and_renews_at_period_end() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter").await;
    let customer = customer_with_card(&emu, None, "pm_card_visa").await;
    let sub = CreateSubscription::new()
        .customer(customer.id.as_str())
        .items(vec![sub_item(&price)])
        .send(&emu.stripe)
        .await
        .expect("subscription");
    let portal = CreateBillingPortalSession::new()
        .customer(customer.id.as_str())
        .return_url("http://portal.test/billing")
        .send(&emu.stripe)
        .await
        .expect("portal");
    let page = emu
        .http
        .get(&portal.url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(page.contains("Cancel plan") && page.contains("http://portal.test/billing"));
    let cancel = format!("{}/subscriptions/{}/cancel", portal.url, sub.id.as_str());
    assert_eq!(
        emu.http
            .post(&cancel)
            .send()
            .await
            .expect("cancel")
            .status(),
        303
    );
    assert!(emu.subscription(sub.id.as_str()).await.cancel_at_period_end);
    let renew = format!("{}/subscriptions/{}/renew", portal.url, sub.id.as_str());
    assert_eq!(
        emu.http.post(&renew).send().await.expect("renew").status(),
        303
    );
    assert!(!emu.subscription(sub.id.as_str()).await.cancel_at_period_end);
}
