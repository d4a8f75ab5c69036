//! Every lifecycle, credit and operator event the portal mails about, through a real SMTP server
//! (aiosmtpd, see `notifications/sink.rs`): each sends exactly one message, to the organization's
//! owners or to the platform admins, with the subject and the links the reader needs.

use std::time::Duration;

use billing_portal::notify::kinds::Kind;
use reqwest::StatusCode;
use serde_json::json;

use crate::billing::{post_event, signed, PLAN, SECRET, STATUS};
use crate::harness::{hybrid_catalog, TestApp};
use crate::notifications::about;
use crate::notifications::mail_to;
use crate::notifications::sink::{Mail, MailSink};

/// Exactly one message whose subject contains `text`, once the outbox has sent everything.
fn one<'a>(mails: &'a [Mail], text: &str) -> &'a Mail {
    let found = about(mails, text);
    assert_eq!(
        found.len(),
        1,
        "one message about {text:?}; got {:?}",
        mails.iter().map(Mail::subject).collect::<Vec<_>>()
    );
    found[0]
}

const OWNER: &str = "owner@acme.test";
const OPERATOR: &str = "ops@platform.test";

#[tokio::test]
async fn a_trial_with_a_card_is_announced_three_days_before_its_end_and_converts() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    app.change_card("4242 4242 4242 4242").await;
    // Four days into seven, Stripe sends `customer.subscription.trial_will_end`.
    app.advance_stripe_clock(4 * 86_400 + 3_600).await;
    let ending = smtp
        .wait_for_subject("Your Pro trial for Acme ends in 3 days")
        .await;
    assert_eq!(ending[0].to(), [OWNER]);
    assert!(ending[0].text().contains(&app.url("/orgs/acme/billing")));
    app.advance_stripe_clock(4 * 86_400).await;
    app.wait_for(STATUS, "active").await;
    let converted = smtp
        .wait_for_subject("Acme is now on the paid Pro plan")
        .await;
    assert_eq!(converted[0].to(), [OWNER]);
    smtp.wait_for_subject("Receipt for Acme").await;
    app.settled().await;
    app.outbox_settled().await;
    let all = smtp.messages();
    one(&all, "ends in 3 days");
    one(&all, "is now on the paid Pro plan");
    assert!(about(&all, "you are on Free").is_empty());
}

#[tokio::test]
async fn a_trial_that_ends_without_a_card_says_the_org_is_on_free_with_a_link_to_the_plans() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    app.advance_stripe_clock(4 * 86_400 + 3_600).await;
    smtp.wait_for_subject("ends in 3 days").await;
    app.advance_stripe_clock(4 * 86_400).await;
    app.wait_for(STATUS, "canceled").await;
    let ended = smtp
        .wait_for_subject("The Pro trial of Acme ended: you are on Free")
        .await;
    assert_eq!(ended[0].to(), [OWNER]);
    assert!(
        ended[0].text().contains(&app.url("/orgs/acme/plans")),
        "{}",
        ended[0].text()
    );
    app.settled().await;
    app.outbox_settled().await;
    let all = smtp.messages();
    one(&all, "ended: you are on Free");
    one(&all, "ends in 3 days");
    // Ending a trial is not a cancellation to be told about twice.
    assert!(about(&all, "was canceled").is_empty());
}

#[tokio::test]
async fn a_grace_period_is_reminded_of_two_days_before_it_ends_then_the_downgrade_is_mailed() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.past_due_customer().await;
    smtp.wait_for_subject("Action needed: the payment for Acme failed")
        .await;
    let catalog = hybrid_catalog();
    let reminders = |days: i64| {
        billing_portal::billing::lifecycle_mail::remind_grace_ending(
            &app.pool,
            &catalog,
            chrono::Utc::now() + chrono::Duration::days(days),
        )
    };
    // Four days on, the end is still three days off: nothing yet.
    assert_eq!(reminders(4).await.expect("reminders"), 0);
    // Six days on it ends within two: one reminder, however often the job runs.
    assert_eq!(reminders(6).await.expect("reminders"), 1);
    assert_eq!(reminders(6).await.expect("reminders"), 1);
    let reminder = smtp
        .wait_for_subject("2 days left to fix the payment for Acme")
        .await;
    assert_eq!(reminder[0].to(), [OWNER]);
    assert!(reminder[0].text().contains(&app.url("/orgs/acme/billing")));
    assert!(reminder[0].header("List-Unsubscribe").is_none());
    let ended = billing_portal::billing::service::end_expired_grace_periods(
        &app.pool,
        &app.gateway(),
        &catalog,
        chrono::Utc::now() + chrono::Duration::days(8),
    )
    .await
    .expect("grace job");
    assert_eq!(ended, 1);
    let downgraded = smtp.wait_for_subject("Acme moved to the Free plan").await;
    assert_eq!(downgraded[0].to(), [OWNER]);
    assert!(downgraded[0].text().contains(&app.url("/orgs/acme/plans")));
    app.settled().await;
    app.outbox_settled().await;
    let all = smtp.messages();
    one(&all, "2 days left");
    one(&all, "moved to the Free plan");
    assert!(about(&all, "was canceled").is_empty());
    assert_eq!(app.outbox_count(Kind::GraceReminder, "sent").await, 1);
}

#[tokio::test]
async fn canceling_resuming_and_canceling_again_each_mail_and_the_end_is_mailed_once() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    let cancel = || app.submit("/orgs/acme/billing", "/forms/billing/cancel", &[]);
    assert_eq!(cancel().await.status(), StatusCode::FOUND);
    let scheduled = smtp
        .wait_for_subject("The Starter plan of Acme ends on")
        .await;
    assert_eq!(scheduled[0].to(), [OWNER]);
    assert!(scheduled[0].text().contains(&app.url("/orgs/acme/billing")));
    let resumed = app
        .submit("/orgs/acme/billing", "/forms/billing/resume", &[])
        .await;
    assert_eq!(resumed.status(), StatusCode::FOUND);
    smtp.wait_for_subject("The Starter plan of Acme continues")
        .await;
    // Canceling again is news again (the first notice was withdrawn by the resume).
    assert_eq!(cancel().await.status(), StatusCode::FOUND);
    smtp.wait_for(4).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while about(&smtp.messages(), "ends on").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second notice");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // At the period's end Stripe ends it: one message, and the webhook's duplicates add nothing.
    app.advance_stripe_clock(32 * 86_400).await;
    app.wait_for(STATUS, "canceled").await;
    let canceled = smtp
        .wait_for_subject("The subscription of Acme was canceled")
        .await;
    assert_eq!(canceled[0].to(), [OWNER]);
    app.settled().await;
    app.outbox_settled().await;
    let all = smtp.messages();
    assert_eq!(about(&all, "The Starter plan of Acme ends on").len(), 2);
    one(&all, "continues");
    one(&all, "was canceled");
    assert!(about(&all, "moved to the Free plan").is_empty());
    app.wait_for(PLAN, "starter").await;
}

#[tokio::test]
async fn an_auto_top_up_that_charges_is_mailed_with_the_credits_added() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.buy_and_return("1").await;
    smtp.wait_for_subject("500 credits added to Acme").await;
    app.enable_auto_top_up("600", "2", "1").await;
    let charged = smtp
        .wait_for_subject("Auto top-up: 1000 credits added to Acme")
        .await;
    assert_eq!(charged[0].to(), [OWNER]);
    assert!(charged[0].text().contains(&app.url("/orgs/acme/credits")));
    app.outbox_settled().await;
    one(&smtp.messages(), "Auto top-up: ");
}

#[tokio::test]
async fn failed_top_ups_are_mailed_each_and_turning_off_tells_the_owners_and_the_operators() {
    let smtp = MailSink::start().await;
    let mail = mail_to(smtp.url());
    let app = TestApp::spawn_with(|s| {
        mail(s);
        s.top_up_retry_seconds = 0;
    })
    .await;
    app.signed_up_owner().await;
    app.platform_admin().await;
    app.buy_and_return("1").await;
    app.change_card("4000 0000 0000 0341").await;
    app.enable_auto_top_up("1000", "1", "5").await;
    let off = smtp
        .wait_for_subject("Auto top-up for Acme was turned off")
        .await;
    assert_eq!(off[0].to(), [OWNER]);
    assert!(off[0].header("List-Unsubscribe").is_none());
    let tripped = smtp
        .wait_for_subject("[ops] Auto top-up turned off for Acme")
        .await;
    assert_eq!(tripped[0].to(), [OPERATOR]);
    app.outbox_settled().await;
    let all = smtp.messages();
    let failed = about(&all, "Auto top-up for Acme failed");
    assert_eq!(failed.len(), 3, "one per failed charge");
    assert!(failed.iter().all(|m| m.to() == [OWNER]));
    one(&all, "was turned off");
    one(&all, "[ops] Auto top-up turned off");
}

#[tokio::test]
async fn a_refund_that_removes_credits_is_mailed_once() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.buy_and_return("1").await;
    smtp.wait_for_subject("500 credits added to Acme").await;
    app.refund(None).await;
    let refund = smtp
        .wait_for_subject("A refund removed 500 credits from Acme")
        .await;
    assert_eq!(refund[0].to(), [OWNER]);
    assert!(refund[0].text().contains(&app.url("/orgs/acme/credits")));
    app.settled().await;
    app.outbox_settled().await;
    one(&smtp.messages(), "A refund removed");
}

#[tokio::test]
async fn many_forged_webhooks_alert_the_operators_once_per_window_and_no_customer() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.platform_admin().await;
    let payload = r#"{"id":"evt_forged","object":"event","type":"invoice.paid","created":1,"data":{"object":{}}}"#;
    let slot = || chrono::Utc::now().timestamp() / 60 / 10;
    let before = slot();
    for _ in 0..19 {
        let refused = post_event(&app, payload, Some(signed("whsec_wrong", payload))).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM notification_outbox").await,
        0,
        "nineteen is below the threshold"
    );
    for _ in 0..6 {
        post_event(&app, payload, None).await;
    }
    let alert = smtp
        .wait_for_subject("webhook signature failures in 10 minutes")
        .await;
    assert_eq!(alert[0].to(), [OPERATOR]);
    assert!(
        alert[0].subject().starts_with("[ops] 20 "),
        "{}",
        alert[0].subject()
    );
    app.outbox_settled().await;
    if slot() == before {
        one(&smtp.messages(), "webhook signature failures");
    }
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE id = 'evt_forged'")
            .await,
        0,
        "a forged event stores nothing"
    );
}

#[tokio::test]
async fn an_event_that_keeps_failing_alerts_the_operators_once() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.platform_admin().await;
    // A subscription event without a subscription in it: stored, then fails to apply.
    let payload = json!({
        "id": "evt_broken", "object": "event", "type": "customer.subscription.updated",
        "created": chrono::Utc::now().timestamp(), "data": { "object": { "object": "subscription" } }
    })
    .to_string();
    let stored = post_event(&app, &payload, Some(signed(SECRET, &payload))).await;
    assert_eq!(stored.status(), StatusCode::OK);
    app.wait_for(
        "SELECT (attempts > 0)::text FROM webhook_events WHERE id = 'evt_broken'",
        "true",
    )
    .await;
    // Skip the backoff of the attempts between (it doubles from a second to a minute).
    sqlx::query(
        "UPDATE webhook_events SET attempts = 7, next_attempt_at = now() WHERE id = 'evt_broken'",
    )
    .execute(&app.pool)
    .await
    .expect("skip the backoff");
    app.wait_for(
        "SELECT status FROM webhook_events WHERE id = 'evt_broken'",
        "failed",
    )
    .await;
    let alert = smtp
        .wait_for_subject("[ops] Webhook event evt_broken failed")
        .await;
    assert_eq!(alert[0].to(), [OPERATOR]);
    assert!(alert[0].text().contains("customer.subscription.updated"));
    assert!(alert[0].text().contains(&app.url("/admin/webhooks")));
    // Stripe delivering it again changes nothing and sends nothing more.
    post_event(&app, &payload, Some(signed(SECRET, &payload))).await;
    app.outbox_settled().await;
    one(&smtp.messages(), "[ops] Webhook event");
}

#[tokio::test]
async fn reconciliation_that_repairs_drift_alerts_the_operators() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.platform_admin().await;
    app.grant(5).await;
    let clean = billing_portal::usage::reconcile::run(&app.pool, true)
        .await
        .expect("reconcile");
    assert!(clean.clean());
    sqlx::query(
        "UPDATE credit_accounts SET balance_millicredits = balance_millicredits + 7
         WHERE org_id = (SELECT id FROM organizations WHERE slug = 'acme')",
    )
    .execute(&app.pool)
    .await
    .expect("tamper");
    let repaired = billing_portal::usage::reconcile::run(&app.pool, true)
        .await
        .expect("reconcile");
    assert!(!repaired.clean());
    let alert = smtp
        .wait_for_subject("[ops] Reconciliation found drift")
        .await;
    assert_eq!(alert[0].to(), [OPERATOR]);
    assert!(
        alert[0].text().contains("1 balance(s)"),
        "{}",
        alert[0].text()
    );
    app.outbox_settled().await;
    one(&smtp.messages(), "[ops] Reconciliation");
}
