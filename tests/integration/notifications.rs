//! Notifications against a real SMTP server (aiosmtpd, see `notifications/sink.rs`): each event
//! sends one message to the right people with the right subject and links; duplicates and a
//! second instance send nothing more; a server that is down is retried; a 550 ends failed and
//! visible; the unsubscribe link and the settings page stop one category; a broken template
//! stops start-up.

#[path = "notifications/sink.rs"]
pub(crate) mod sink;

use std::time::{Duration, Instant};

use billing_portal::config::Settings;
use billing_portal::notify::kinds::Kind;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sink::{free_port, Mail, MailSink};

use crate::billing::{post_event, signed, SECRET};
use crate::harness::{location, TestApp, PASSWORD};

/// SMTP at `url`, retries after a second.
pub(crate) fn mail_to(url: String) -> impl FnOnce(&mut Settings) {
    move |s: &mut Settings| {
        s.smtp_url = Some(url.parse().expect("url"));
        s.mail_from = "Acme Billing <billing@portal.test>".to_owned();
        s.mail_retry_seconds = 1;
        s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")];
    }
}

impl TestApp {
    /// Waits until the outbox has nothing left to send (at most 20 s).
    pub(crate) async fn outbox_settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while self
            .count("SELECT count(*) FROM notification_outbox WHERE status = 'pending'")
            .await
            > 0
        {
            assert!(Instant::now() < deadline, "the outbox never emptied");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn outbox_count(&self, kind: Kind, status: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM notification_outbox WHERE kind = $1 AND status = $2",
        )
        .bind(kind.as_str())
        .bind(status)
        .fetch_one(&self.pool)
        .await
        .expect("count")
    }

    /// An API key of Acme's (created on its page) for recording usage.
    async fn usage_key(&self) -> String {
        self.submit(
            "/orgs/acme/api-keys",
            "/forms/api-keys/create",
            &[("name", "Product")],
        )
        .await;
        let html = self
            .get("/orgs/acme/api-keys")
            .await
            .text()
            .await
            .expect("html");
        let at = html
            .find(r#"data-testid="new-api-key""#)
            .expect("secret shown");
        let start = at + html[at..].find('>').expect("tag") + 1;
        let end = start + html[start..].find('<').expect("end");
        html[start..end].to_owned()
    }

    async fn record(&self, key: &str, tier: &str, idempotency_key: &str) -> StatusCode {
        self.another_browser()
            .post(self.url("/api/v1/usage"))
            .bearer_auth(key)
            .json(&json!({ "tier": tier, "idempotency_key": idempotency_key }))
            .send()
            .await
            .expect("usage")
            .status()
    }
}

pub(crate) fn about<'a>(mails: &'a [Mail], text: &str) -> Vec<&'a Mail> {
    mails
        .iter()
        .filter(|m| m.subject().contains(text))
        .collect()
}

#[tokio::test]
async fn usage_warnings_mail_owners_and_admins_once_each_with_an_unsubscribe_header() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let admin = app.person("admin@acme.test", "Admins").await;
    let member = app.person("member@acme.test", "Members").await;
    for (who, role) in [(&admin, "admin"), (&member, "member")] {
        let email = if role == "admin" {
            "admin@acme.test"
        } else {
            "member@acme.test"
        };
        let link = app.invitation_link(&app.client, "acme", email, role).await;
        app.accept_with(who, &link).await;
    }
    // Each new member is told, alone.
    smtp.wait_for_subject("You were added to Acme").await;
    app.outbox_settled().await;
    let added = about(&smtp.messages(), "You were added to Acme")
        .into_iter()
        .map(|m| m.to())
        .collect::<Vec<_>>();
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(added.contains(&vec!["admin@acme.test".to_owned()]));
    assert!(added.contains(&vec!["member@acme.test".to_owned()]));
    let key = app.usage_key().await;
    for i in 0..8 {
        assert_eq!(
            app.record(&key, "small", &format!("s{i}")).await,
            StatusCode::OK
        );
    }
    smtp.wait_for_subject("80% of its Small actions").await;
    app.outbox_settled().await;
    let near = about(&smtp.messages(), "80% of its Small actions")
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    let mut to: Vec<String> = near.iter().flat_map(Mail::to).collect();
    to.sort();
    assert_eq!(
        to,
        ["admin@acme.test", "owner@acme.test"],
        "owners and admins, not members"
    );
    let mail = &near[0];
    assert_eq!(mail.subject(), "Acme has used 80% of its Small actions");
    assert!(
        mail.text().contains(&app.url("/orgs/acme")),
        "{}",
        mail.text()
    );
    // minijinja escapes `/` in HTML as `&#x2f;` (a browser reads the same link).
    let html = mail.html().replace("&#x2f;", "/");
    assert!(
        html.contains(&format!("href=\"{}\"", app.url("/orgs/acme"))),
        "{html}"
    );
    assert!(mail
        .header("Message-ID")
        .is_some_and(|id| id.ends_with("@portal.test>")));
    assert!(mail.header("Date").is_some());
    assert!(mail
        .header("From")
        .is_some_and(|f| f.contains("billing@portal.test")));
    let unsubscribe = mail.header("List-Unsubscribe").expect("List-Unsubscribe");
    assert!(unsubscribe.starts_with(&format!("<{}", app.url("/unsubscribe/one-click/"))));
    assert_eq!(
        mail.header("List-Unsubscribe-Post"),
        Some("List-Unsubscribe=One-Click")
    );
    // The 9th action sends nothing; the 10th uses up the included ones.
    app.record(&key, "small", "s8").await;
    app.record(&key, "small", "s9").await;
    smtp.wait_for_subject("has used all its Small actions")
        .await;
    // Overage, and refusals once the buffer is gone: each once inside the cooldown.
    for i in 0..14 {
        app.record(&key, "small", &format!("o{i}")).await;
    }
    smtp.wait_for_subject("out of credits").await;
    app.outbox_settled().await;
    let all = smtp.messages();
    assert_eq!(about(&all, "80% of its Small").len(), 2);
    assert_eq!(about(&all, "has used all its Small actions").len(), 2);
    assert_eq!(about(&all, "in overage on Small").len(), 2);
    assert_eq!(
        about(&all, "out of credits: Small actions are refused").len(),
        2
    );
}

#[tokio::test]
async fn an_upgrade_sends_one_receipt_and_one_plan_change_and_a_duplicate_webhook_nothing_more() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    app.settled().await;
    let receipt = smtp.wait_for_subject("Receipt for Acme: $9.99 paid").await;
    smtp.wait_for_subject("Acme is now on the Starter plan")
        .await;
    app.outbox_settled().await;
    let before = smtp.messages().len();
    assert_eq!(receipt.len(), 1);
    let invoice_url: String = sqlx::query_scalar(
        "SELECT hosted_invoice_url FROM invoices WHERE status = 'paid' AND amount_paid > 0",
    )
    .fetch_one(&app.pool)
    .await
    .expect("invoice");
    assert!(
        receipt[0].text().contains(&invoice_url),
        "{}",
        receipt[0].text()
    );
    assert!(receipt[0].html().contains(".pdf") || receipt[0].text().contains("PDF: http"));
    let change = about(&smtp.messages(), "now on the Starter plan")[0].clone();
    assert!(
        change.text().contains("from Free to Starter"),
        "{}",
        change.text()
    );
    assert!(change.text().contains(&app.url("/orgs/acme/billing")));

    // Stripe delivers the paid invoice again, and once more under another event id (as it does
    // with invoice.paid and invoice.payment_succeeded): nothing more is sent.
    let payload: Value = sqlx::query_scalar(
        "SELECT payload FROM webhook_events WHERE type = 'invoice.paid' LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("stored invoice.paid");
    let again = payload.to_string();
    assert!(post_event(&app, &again, Some(signed(SECRET, &again)))
        .await
        .status()
        .is_success());
    let mut renamed = payload.clone();
    renamed["id"] = Value::from("evt_duplicate_receipt");
    let renamed = renamed.to_string();
    assert!(post_event(&app, &renamed, Some(signed(SECRET, &renamed)))
        .await
        .status()
        .is_success());
    app.wait_for(
        "SELECT status FROM webhook_events WHERE id = 'evt_duplicate_receipt'",
        "applied",
    )
    .await;
    app.outbox_settled().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(
        smtp.messages().len(),
        before,
        "a duplicate webhook sends nothing"
    );
    assert_eq!(app.outbox_count(Kind::Receipt, "sent").await, 1);
}

#[tokio::test]
async fn a_trial_then_a_failed_payment_and_its_recovery_are_mailed_and_payment_mail_has_no_unsubscribe(
) {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    let started = smtp
        .wait_for_subject("Your Pro trial for Acme has started")
        .await;
    assert!(started[0].header("List-Unsubscribe").is_some());
    assert!(started[0].text().contains(&app.url("/orgs/acme/billing")));
    let app2 = TestApp::spawn_with(mail_to(smtp.url())).await;
    app2.past_due_customer().await;
    let failed = smtp
        .wait_for_subject("Action needed: the payment for Acme failed")
        .await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].to(), ["owner@acme.test"]);
    assert!(
        failed[0].header("List-Unsubscribe").is_none(),
        "payment failures are always sent"
    );
    assert!(failed[0].text().contains(&app2.url("/orgs/acme/billing")));
    assert!(failed[0].text().contains("You keep the Starter plan until"));
    app2.change_card("4242 4242 4242 4242").await;
    smtp.wait_for_subject("Payment received: Acme is back in good standing")
        .await;
    app2.outbox_settled().await;
    assert_eq!(app2.outbox_count(Kind::PaymentFailed, "sent").await, 1);
    assert_eq!(app2.outbox_count(Kind::PaymentRecovered, "sent").await, 1);
}

/// Writes `n` notifications for Acme's owners through the outbox, in one transaction.
async fn enqueue_many(app: &TestApp, n: usize) {
    let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = 'acme'")
        .fetch_one(&app.pool)
        .await
        .expect("org");
    let mut tx = app.pool.begin().await.expect("tx");
    for i in 0..n {
        billing_portal::notify::about_org(
            &mut tx,
            Kind::PackBought,
            org,
            &format!("test-{i}"),
            json!({ "credits": "500", "amount": "$20.00", "packs": 1 }),
        )
        .await
        .expect("enqueue");
    }
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn two_instances_on_one_database_send_each_message_once() {
    let smtp = MailSink::start().await;
    let first = TestApp::spawn_with(mail_to(smtp.url())).await;
    let second = TestApp::spawn_on(first.database_url.clone(), mail_to(smtp.url())).await;
    first.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    enqueue_many(&first, 120).await;
    // The same causes again (a retried job, the other instance) add nothing.
    enqueue_many(&second, 120).await;
    smtp.wait_for(120).await;
    first.outbox_settled().await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 120, "each message once");
    let mut ids: Vec<&str> = mails
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 120);
    assert_eq!(first.outbox_count(Kind::PackBought, "sent").await, 120);
}

#[tokio::test]
async fn a_server_that_is_down_is_retried_and_delivers_once_it_is_up() {
    let port = free_port();
    let app = TestApp::spawn_with(mail_to(format!("smtp://127.0.0.1:{port}"))).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    enqueue_many(&app, 1).await;
    // The first attempt fails (nothing listens) and is scheduled again.
    let deadline = Instant::now() + Duration::from_secs(20);
    while app
        .count("SELECT count(*) FROM notification_outbox WHERE attempts >= 1 AND last_error IS NOT NULL AND status = 'pending'")
        .await
        == 0
    {
        assert!(Instant::now() < deadline, "no failed attempt recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let smtp = MailSink::start_on(port, None).await;
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0].subject(), "500 credits added to Acme");
    app.outbox_settled().await;
    assert_eq!(
        app.count("SELECT count(*) FROM notification_outbox WHERE status = 'sent' AND attempts >= 2 AND sent_at IS NOT NULL").await,
        1
    );
}

#[tokio::test]
async fn a_permanent_550_ends_the_message_failed_with_the_servers_answer() {
    let smtp = {
        let port = free_port();
        MailSink::start_on(port, Some("^owner@")).await
    };
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    enqueue_many(&app, 1).await;
    app.outbox_settled().await;
    let (status, attempts, error): (String, i32, Option<String>) =
        sqlx::query_as("SELECT status, attempts, last_error FROM notification_outbox")
            .fetch_one(&app.pool)
            .await
            .expect("row");
    assert_eq!((status.as_str(), attempts), ("failed", 1), "not retried");
    assert!(
        error.as_deref().is_some_and(|e| e.contains("550")),
        "{error:?}"
    );
    assert!(smtp.messages().is_empty());
}

#[tokio::test]
async fn the_one_click_unsubscribe_works_without_a_session_and_stops_only_that_category() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let key = app.usage_key().await;
    for i in 0..8 {
        app.record(&key, "small", &format!("s{i}")).await;
    }
    let mail = smtp.wait_for_subject("80% of its Small actions").await[0].clone();
    let header = mail.header("List-Unsubscribe").expect("header");
    let url = header.trim_start_matches('<').trim_end_matches('>');
    // A mail provider's POST: no cookies, no Origin, no anti-forgery token.
    let stranger = reqwest::Client::new();
    let wrong = stranger.post(url).body("").send().await.expect("post");
    assert_eq!(wrong.status(), StatusCode::BAD_REQUEST);
    let forged = stranger
        .post(app.url("/unsubscribe/one-click/AAAA"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("SELECT count(*) FROM notification_opt_outs")
            .await,
        0
    );
    let done = stranger
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .expect("post");
    assert_eq!(done.status(), StatusCode::OK);
    assert_eq!(
        app.count("SELECT count(*) FROM notification_opt_outs WHERE category = 'usage'")
            .await,
        1
    );
    // Usage mail stops; other categories still arrive.
    app.record(&key, "small", "s8").await;
    app.record(&key, "small", "s9").await;
    enqueue_many(&app, 1).await;
    smtp.wait_for_subject("500 credits added to Acme").await;
    app.outbox_settled().await;
    assert!(about(&smtp.messages(), "has used all its Small").is_empty());
    assert_eq!(app.outbox_count(Kind::Usage100, "suppressed").await, 1);
}

#[tokio::test]
async fn preferences_set_on_the_settings_page_are_honoured() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let page = app.get("/settings/notifications").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Credit packs, auto top-up and refunds"),
        "{html}"
    );
    assert!(html.contains("Failed payments and grace periods"));
    // Everything but credits stays on.
    let saved = app
        .submit(
            "/settings/notifications",
            "/forms/notifications/preferences",
            &[
                ("trial", "on"),
                ("billing", "on"),
                ("usage", "on"),
                ("operators", "on"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::FOUND);
    assert_eq!(location(&saved), "/settings/notifications");
    let html = app
        .get("/settings/notifications")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        html.contains(r#"id="usage" name="usage" value="on" checked>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"id="credits" name="credits" value="on">"#),
        "{html}"
    );
    enqueue_many(&app, 1).await;
    let key = app.usage_key().await;
    for i in 0..8 {
        app.record(&key, "small", &format!("s{i}")).await;
    }
    smtp.wait_for_subject("80% of its Small actions").await;
    app.outbox_settled().await;
    assert!(about(&smtp.messages(), "credits added").is_empty());
    assert_eq!(app.outbox_count(Kind::PackBought, "suppressed").await, 1);
    // Anonymous visitors are sent to log in.
    let anonymous = app
        .another_browser()
        .get(app.url("/settings/notifications"))
        .send()
        .await
        .expect("get");
    assert_ne!(anonymous.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_broken_template_stops_start_up_naming_the_file_and_line() {
    let templates = tempfile::tempdir().expect("dir");
    std::fs::write(
        templates.path().join("receipt.html"),
        "<p>Paid</p>\n<p>{% if amount %}no end</p>\n",
    )
    .expect("write");
    let (_, database_url) = crate::harness::fresh_database().await;
    let data = tempfile::tempdir().expect("data");
    let mut settings = Settings::local(Some(database_url), data.path().into());
    settings.templates_dir = Some(templates.path().to_owned());
    let refused = billing_portal::startup::Application::build(settings)
        .await
        .err()
        .expect("start-up refused");
    let message = format!("{refused:#}");
    assert!(message.contains("receipt.html:"), "{message}");
    assert!(message.contains("is broken"), "{message}");
}

#[tokio::test]
async fn the_unsubscribe_page_works_without_a_session_and_a_forged_link_changes_nothing() {
    let smtp = MailSink::start().await;
    let app = TestApp::spawn_with(mail_to(smtp.url())).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    enqueue_many(&app, 1).await;
    let mail = smtp.wait_for(1).await[0].clone();
    let line = mail
        .text()
        .lines()
        .find(|l| l.starts_with("Unsubscribe: "))
        .expect("an unsubscribe link in the text")
        .to_owned();
    let path = line
        .trim_start_matches("Unsubscribe: ")
        .trim_start_matches(&app.base)
        .to_owned();
    assert!(path.starts_with("/unsubscribe/"), "{path}");
    // Someone who is not logged in (a fresh browser) opens the link and confirms.
    let stranger = app.another_browser();
    // Leptos marks text boundaries with `<!>`.
    let page = app
        .get_with(&stranger, &path)
        .await
        .text()
        .await
        .expect("html")
        .replace("<!>", "");
    assert!(
        page.contains("Stop e-mail about: Credit packs, auto top-up and refunds?"),
        "{page}"
    );
    let token = path.trim_start_matches("/unsubscribe/");
    let forged = app
        .submit_with(
            &stranger,
            &path,
            "/forms/notifications/unsubscribe",
            &[("token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        )
        .await;
    assert_ne!(location(&forged), path);
    assert_eq!(
        app.count("SELECT count(*) FROM notification_opt_outs")
            .await,
        0
    );
    let done = app
        .submit_with(
            &stranger,
            &path,
            "/forms/notifications/unsubscribe",
            &[("token", token)],
        )
        .await;
    assert_eq!(location(&done), path);
    let page = app
        .get_with(&stranger, &path)
        .await
        .text()
        .await
        .expect("html")
        .replace("<!>", "");
    assert!(
        page.contains("You will no longer receive e-mail about: Credit packs"),
        "{page}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM notification_opt_outs WHERE category = 'credits'")
            .await,
        1
    );
}

#[tokio::test]
async fn without_smtp_mail_lands_in_the_catcher_and_the_history_is_for_owners_and_admins() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let member = app.person("member@acme.test", "Members").await;
    let link = app
        .invitation_link(&app.client, "acme", "member@acme.test", "member")
        .await;
    app.accept_with(&member, &link).await;
    enqueue_many(&app, 1).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while app.count("SELECT count(*) FROM caught_mail").await < 2 {
        assert!(
            Instant::now() < deadline,
            "nothing reached the mail catcher"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The owner reads the organization's history; a plain member may not.
    let history = app.get("/orgs/acme/notifications").await;
    assert_eq!(history.status(), StatusCode::OK);
    let html = history.text().await.expect("html");
    assert!(
        html.contains("500 credits added to Acme") && html.contains("sent"),
        "{html}"
    );
    let refused = app.get_with(&member, "/orgs/acme/notifications").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    // The catcher is for platform admins only.
    assert_eq!(app.get("/admin/mail").await.status(), StatusCode::FORBIDDEN);
    sqlx::query("UPDATE users SET is_platform_admin = true WHERE email = 'member@acme.test'")
        .execute(&app.pool)
        .await
        .expect("admin");
    // The change reaches the instance's copy of who is who through a database notice.
    let deadline = Instant::now() + Duration::from_secs(20);
    let html = loop {
        let page = app.get_with(&member, "/admin/mail").await;
        if page.status() == StatusCode::OK {
            break page.text().await.expect("html");
        }
        assert!(Instant::now() < deadline, "never became a platform admin");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(html.contains("500 credits added to Acme"), "{html}");
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM caught_mail WHERE subject LIKE '500 credits%'")
            .fetch_one(&app.pool)
            .await
            .expect("caught");
    let html = app
        .get_with(&member, &format!("/admin/mail/{id}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(html.contains(r#"sandbox="""#), "{html}");
    assert!(
        html.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{html}"
    );
    assert!(html.contains("500 credits were added to Acme"), "{html}");
    // Platform admins see any organization's history.
    let other = app.get_with(&member, "/orgs/acme/notifications").await;
    assert_eq!(other.status(), StatusCode::OK);
}
