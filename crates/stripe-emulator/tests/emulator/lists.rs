//! The list calls a merchant uses to catch up with Stripe and check for drift answer as Stripe's
//! do: events of the last 30 days newest first with `created` filters and cursors,
//! subscriptions by customer, status and `created`, invoices by customer; a disabled webhook
//! endpoint receives nothing while the Events API still lists what happened.

use stripe_billing::invoice::ListInvoice;
use stripe_billing::subscription::{
    CreateSubscription, CreateSubscriptionItems, ListSubscription, ListSubscriptionStatus,
    UpdateSubscription,
};
use stripe_core::customer::CreateCustomer;
use stripe_core::event::ListEvent;
use stripe_types::RangeQueryTs;

use super::api::monthly_price;
use super::{Receiver, TestEmulator};

impl TestEmulator {
    /// Moves the emulator's global clock forward by `seconds`.
    pub async fn advance_global(&self, seconds: i64) {
        let response = self
            .raw(
                reqwest::Method::POST,
                "/_emulator/clock/advance",
                &[("seconds", &seconds.to_string())],
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    async fn new_customer(&self, email: &str) -> stripe_core::Customer {
        CreateCustomer::new()
            .email(email)
            .send(&self.stripe)
            .await
            .expect("customer")
    }
}

/// Every event id, following `starting_after` from the first page of `list` (newest first).
async fn walk(emu: &TestEmulator, list: ListEvent) -> Vec<(String, i64)> {
    let mut seen = Vec::new();
    let mut page = list.clone().send(&emu.stripe).await.expect("page");
    loop {
        seen.extend(
            page.data
                .iter()
                .map(|e| (e.id.as_str().to_owned(), e.created)),
        );
        if !page.has_more {
            return seen;
        }
        let last = seen.last().map(|(id, _)| id.clone()).unwrap_or_default();
        page = list
            .clone()
            .starting_after(last)
            .send(&emu.stripe)
            .await
            .expect("next page");
    }
}

#[tokio::test]
async fn events_page_newest_first_with_created_filters_and_a_30_day_horizon() {
    let emu = TestEmulator::start().await;
    let mut stamps = Vec::new();
    for n in 0..5 {
        let c = emu.new_customer(&format!("c{n}@acme.test")).await;
        stamps.push(c.created);
        emu.advance_global(60).await;
    }
    // Two per page: all five, newest first, each once.
    let all = walk(&emu, ListEvent::new().limit(2)).await;
    assert_eq!(all.len(), 5, "{all:?}");
    assert!(all.windows(2).all(|w| w[0].1 >= w[1].1), "newest first");
    let first = ListEvent::new()
        .limit(2)
        .send(&emu.stripe)
        .await
        .expect("p1");
    assert!(first.has_more);
    // `ending_before` goes back towards newer events.
    let back = ListEvent::new()
        .limit(10)
        .ending_before(all[3].0.clone())
        .send(&emu.stripe)
        .await
        .expect("back");
    let back_ids: Vec<&str> = back.data.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(
        back_ids,
        [all[0].0.as_str(), all[1].0.as_str(), all[2].0.as_str()]
    );
    assert!(!back.has_more);

    // created[gte], [gt], [lt], [lte] and an exact timestamp.
    let count = |range: RangeQueryTs| {
        let list = ListEvent::new().created(range).limit(100);
        let emu = &emu;
        async move { list.send(&emu.stripe).await.expect("filtered").data.len() }
    };
    assert_eq!(count(RangeQueryTs::gte(stamps[2])).await, 3);
    assert_eq!(count(RangeQueryTs::gt(stamps[2])).await, 2);
    assert_eq!(count(RangeQueryTs::lt(stamps[2])).await, 2);
    assert_eq!(count(RangeQueryTs::lte(stamps[2])).await, 3);
    assert_eq!(count(RangeQueryTs::eq(stamps[4])).await, 1);
    // Paging inside a filter keeps to it.
    let since = walk(
        &emu,
        ListEvent::new()
            .created(RangeQueryTs::gte(stamps[1]))
            .limit(1),
    )
    .await;
    assert_eq!(since.len(), 4);

    // Stripe keeps events listable for 30 days: 31 days on, the old ones are gone.
    emu.advance_global(31 * 86_400 - 4 * 60).await;
    let late = emu.new_customer("late@acme.test").await;
    let kept = walk(&emu, ListEvent::new().limit(100)).await;
    assert_eq!(
        kept.len(),
        1,
        "only the event of the last 30 days: {kept:?}"
    );
    assert_eq!(kept[0].1, late.created);
}

#[tokio::test]
async fn subscriptions_list_by_customer_status_and_created_with_cursors() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter_monthly").await;
    let ada = emu.new_customer("ada@acme.test").await;
    let bob = emu.new_customer("bob@acme.test").await;
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.id.as_str().to_owned());
    let mut made = Vec::new();
    for _ in 0..3 {
        let sub = CreateSubscription::new()
            .customer(ada.id.as_str())
            .items(vec![item.clone()])
            .trial_period_days(7u32)
            .send(&emu.stripe)
            .await
            .expect("subscription");
        made.push(sub);
        emu.advance_global(60).await;
    }
    CreateSubscription::new()
        .customer(bob.id.as_str())
        .items(vec![item.clone()])
        .trial_period_days(7u32)
        .send(&emu.stripe)
        .await
        .expect("bob's subscription");
    stripe_billing::subscription::CancelSubscription::new(made[0].id.clone())
        .send(&emu.stripe)
        .await
        .expect("cancel");

    let ada_live = ListSubscription::new()
        .customer(ada.id.as_str())
        .send(&emu.stripe)
        .await
        .expect("live");
    assert_eq!(
        ada_live.data.len(),
        2,
        "a canceled one is not listed by default"
    );
    let page = ListSubscription::new()
        .customer(ada.id.as_str())
        .status(ListSubscriptionStatus::All)
        .limit(2)
        .send(&emu.stripe)
        .await
        .expect("all, page 1");
    assert_eq!(page.data.len(), 2);
    assert!(page.has_more);
    assert_eq!(page.data[0].id, made[2].id, "newest first");
    let rest = ListSubscription::new()
        .customer(ada.id.as_str())
        .status(ListSubscriptionStatus::All)
        .limit(2)
        .starting_after(page.data[1].id.as_str())
        .send(&emu.stripe)
        .await
        .expect("all, page 2");
    assert_eq!(rest.data.len(), 1);
    assert_eq!(rest.data[0].id, made[0].id);
    assert!(!rest.has_more);
    let recent = ListSubscription::new()
        .customer(ada.id.as_str())
        .status(ListSubscriptionStatus::All)
        .created(RangeQueryTs::gte(made[1].created))
        .send(&emu.stripe)
        .await
        .expect("created filter");
    assert_eq!(recent.data.len(), 2);
    assert!(recent.data.iter().all(|s| s.customer.id() == &ada.id));
}

#[tokio::test]
async fn invoices_list_by_customer_with_cursors_and_created() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter_monthly").await;
    let ada = emu.new_customer("ada@acme.test").await;
    let other = emu.new_customer("other@acme.test").await;
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.id.as_str().to_owned());
    for customer in [&ada, &ada, &other] {
        CreateSubscription::new()
            .customer(customer.id.as_str())
            .items(vec![item.clone()])
            .trial_period_days(7u32)
            .send(&emu.stripe)
            .await
            .expect("subscription with a trial invoice");
        emu.advance_global(60).await;
    }
    let first = ListInvoice::new()
        .customer(ada.id.as_str())
        .limit(1)
        .send(&emu.stripe)
        .await
        .expect("page 1");
    assert_eq!(first.data.len(), 1);
    assert!(first.has_more);
    let second = ListInvoice::new()
        .customer(ada.id.as_str())
        .limit(1)
        .starting_after(first.data[0].id.as_ref().expect("id").as_str())
        .send(&emu.stripe)
        .await
        .expect("page 2");
    assert_eq!(second.data.len(), 1);
    assert!(!second.has_more);
    assert!(second.data[0].created <= first.data[0].created);
    let newest_only = ListInvoice::new()
        .customer(ada.id.as_str())
        .created(RangeQueryTs::gt(second.data[0].created))
        .send(&emu.stripe)
        .await
        .expect("created filter");
    assert_eq!(newest_only.data.len(), 1);
}

#[tokio::test]
async fn a_disabled_endpoint_receives_nothing_while_the_events_api_lists_it() {
    let emu = TestEmulator::start().await;
    let receiver = Receiver::start(0).await;
    emu.listen(&receiver).await;
    emu.new_customer("before@acme.test").await;
    receiver
        .wait_until("the first event", |d| d.len() == 1)
        .await;
    let endpoints: serde_json::Value = emu
        .raw(reqwest::Method::GET, "/v1/webhook_endpoints", &[])
        .await
        .json()
        .await
        .expect("json");
    let id = endpoints["data"][0]["id"].as_str().expect("id").to_owned();
    let disabled: serde_json::Value = emu
        .raw(
            reqwest::Method::POST,
            &format!("/v1/webhook_endpoints/{id}"),
            &[("disabled", "true")],
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(disabled["status"], "disabled");
    let missed = emu.new_customer("missed@acme.test").await;
    emu.raw(
        reqwest::Method::POST,
        &format!("/v1/webhook_endpoints/{id}"),
        &[("disabled", "false")],
    )
    .await;
    emu.new_customer("after@acme.test").await;
    let got = receiver
        .wait_until("the event after re-enabling", |d| d.len() == 2)
        .await;
    let emails: Vec<String> = got
        .iter()
        .map(|d| {
            d.json()["data"]["object"]["email"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(emails, ["before@acme.test", "after@acme.test"]);
    let listed = ListEvent::new().send(&emu.stripe).await.expect("events");
    assert!(
        listed
            .data
            .iter()
            .any(|e| e.created == missed.created && e.type_.as_str() == "customer.created"),
        "the missed event is still listed"
    );
    assert_eq!(listed.data.len(), 3);
}

#[tokio::test]
async fn a_running_trial_can_be_given_a_later_end() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Starter", 999, "starter_monthly").await;
    let ada = emu.new_customer("ada@acme.test").await;
    let mut item = CreateSubscriptionItems::new();
    item.price = Some(price.id.as_str().to_owned());
    let sub = CreateSubscription::new()
        .customer(ada.id.as_str())
        .items(vec![item])
        .trial_period_days(7u32)
        .send(&emu.stripe)
        .await
        .expect("trial");
    let end = sub.trial_end.expect("trial end") + 3 * 86_400;
    let extended = UpdateSubscription::new(sub.id.clone())
        .trial_end(stripe_billing::subscription::UpdateSubscriptionTrialEnd::Timestamp(end))
        .send(&emu.stripe)
        .await
        .expect("extended");
    assert_eq!(extended.trial_end, Some(end));
    assert_eq!(extended.items.data[0].current_period_end, end);
    assert_eq!(extended.status.as_str(), "trialing");
    let past = UpdateSubscription::new(sub.id.clone())
        .trial_end(stripe_billing::subscription::UpdateSubscriptionTrialEnd::Timestamp(1))
        .send(&emu.stripe)
        .await;
    assert!(matches!(past, Err(stripe::StripeError::Stripe(_, 400))));
}
