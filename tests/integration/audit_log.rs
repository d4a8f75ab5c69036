//! The audit log: every repair action writes it with the admin, the reason and the values before
//! and after; so do a customer's form, the API, a webhook and a job; nothing can change or delete
//! a row; owners see their organization's rows only and admins filter everyone's.

use reqwest::StatusCode;

use crate::harness::{location, TestApp, PASSWORD};

const TRIAL_END: &str = "SELECT trial_end::text FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";
const CANCELS: &str = "SELECT cancel_at_period_end::text FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";

/// One audit row: actor kind, actor id, reason, and `field` before and after.
type Row = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
);

impl TestApp {
    async fn audit_row(&self, action: &str, entity: &str, field: &str) -> Row {
        sqlx::query_as(
            "SELECT actor_kind, actor_id, reason, before->>$3, after->>$3 FROM audit_log
             WHERE action = $1 AND entity = $2 ORDER BY id DESC LIMIT 1",
        )
        .bind(action)
        .bind(entity)
        .bind(field)
        .fetch_optional(&self.pool)
        .await
        .expect("query")
        .unwrap_or_else(|| panic!("no audit row for {action} on {entity}"))
    }

    /// Every row, for a failure message.
    async fn audit_dump(&self) -> String {
        let rows: Vec<(String, Option<String>, String, String)> = sqlx::query_as(
            "SELECT actor_kind, actor_id, action, entity FROM audit_log ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .expect("rows");
        format!("{rows:#?}")
    }

    async fn user_id(&self, email: &str) -> String {
        sqlx::query_scalar("SELECT id::text FROM users WHERE email = $1")
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .expect("user")
    }

    async fn admin_posts(
        &self,
        admin: &reqwest::Client,
        action: &str,
        fields: &[(&str, &str)],
    ) -> String {
        let posted = self
            .submit_with(admin, "/admin/orgs/acme", action, fields)
            .await;
        assert_eq!(posted.status(), StatusCode::FOUND);
        assert_eq!(location(&posted), "/admin/orgs/acme");
        self.follow_with(admin, &posted)
            .await
            .text()
            .await
            .expect("html")
    }
}

#[tokio::test]
async fn every_repair_action_writes_the_audit_log_with_its_reason_and_before_and_after() {
    let app = TestApp::spawn().await;
    app.acme_on_a_trial().await;
    let admin = app.platform_admin().await;
    let ops = app.user_id("ops@platform.test").await;
    let trial_end: String = sqlx::query_scalar(TRIAL_END)
        .fetch_one(&app.pool)
        .await
        .expect("trial end");

    // Without a reason nothing happens, and the page says why.
    let rows = app.count("SELECT count(*) FROM audit_log").await;
    let refused = app
        .admin_posts(
            &admin,
            "/forms/admin/repair/extend-trial",
            &[("days", "3"), ("reason", " ")],
        )
        .await;
    assert!(
        refused.contains("Nothing changed: Give a reason"),
        "{refused}"
    );
    let refused = app
        .admin_posts(
            &admin,
            "/forms/admin/repair/extend-trial",
            &[("days", "0"), ("reason", "why")],
        )
        .await;
    assert!(refused.contains("Days must be a whole number"), "{refused}");
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, rows);
    app.wait_for(TRIAL_END, &trial_end).await;

    let page = app
        .admin_posts(
            &admin,
            "/forms/admin/repair/extend-trial",
            &[("days", "3"), ("reason", "Sales call ran late")],
        )
        .await;
    assert!(page.contains("The trial now ends"), "{page}");
    let (kind, actor, reason, before, after) = app
        .audit_row("admin.extend_trial", "subscriptions", "trial_end")
        .await;
    assert_eq!(
        (kind.as_str(), actor.as_deref()),
        ("user", Some(ops.as_str()))
    );
    assert_eq!(reason.as_deref(), Some("Sales call ran late"));
    assert_ne!(before, after, "the trial end moved");

    app.admin_posts(
        &admin,
        "/forms/admin/credits",
        &[
            ("change", "grant"),
            ("credits", "10"),
            ("reason", "Goodwill"),
        ],
    )
    .await;
    let (kind, _, reason, before, after) = app
        .audit_row("admin.grant_credits", "credit_ledger", "millicredits")
        .await;
    assert_eq!(kind, "user");
    assert_eq!(reason.as_deref(), Some("Goodwill"));
    assert_eq!((before, after.as_deref()), (None, Some("10000")));

    app.admin_posts(
        &admin,
        "/forms/admin/repair/resync",
        &[("reason", "Customer says the plan is wrong")],
    )
    .await;
    let (_, _, reason, before, after) = app
        .audit_row("admin.resync", "billing_drifts", "open_drifts")
        .await;
    assert_eq!(reason.as_deref(), Some("Customer says the plan is wrong"));
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("0"), Some("0"))
    );

    let page = app
        .admin_posts(
            &admin,
            "/forms/admin/repair/cancel",
            &[("when", "period_end"), ("reason", "Asked by phone")],
        )
        .await;
    assert!(page.contains("cancels at the end of its period"), "{page}");
    let (_, _, _, before, after) = app
        .audit_row(
            "admin.cancel_at_period_end",
            "subscriptions",
            "cancel_at_period_end",
        )
        .await;
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("false"), Some("true"))
    );

    app.admin_posts(
        &admin,
        "/forms/admin/repair/cancel",
        &[("when", "now"), ("reason", "Fraud")],
    )
    .await;
    let (_, _, reason, before, after) = app
        .audit_row("admin.cancel_now", "subscriptions", "status")
        .await;
    assert_eq!(reason.as_deref(), Some("Fraud"));
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("trialing"), Some("canceled"))
    );

    // Replaying an event.
    sqlx::query(
        "INSERT INTO webhook_events (id, type, created, payload, status, last_error, org_id)
         SELECT 'evt_failed', 'customer.updated', 0, '{}', 'failed', 'boom', id
         FROM organizations WHERE slug = 'acme'",
    )
    .execute(&app.pool)
    .await
    .expect("event");
    let replayed = app
        .submit_with(
            &admin,
            "/admin/webhooks/evt_failed",
            "/forms/admin/webhooks/replay",
            &[("reason", "Fixed the parser")],
        )
        .await;
    assert_eq!(replayed.status(), StatusCode::FOUND);
    let (kind, _, reason, before, after) = app
        .audit_row("admin.replay_event", "webhook_events", "status")
        .await;
    assert_eq!(kind, "user");
    assert_eq!(reason.as_deref(), Some("Fixed the parser"));
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("failed"), Some("pending"))
    );
}

#[tokio::test]
async fn customer_api_webhook_and_job_changes_write_it_too() {
    let app = TestApp::spawn().await;
    let sub = app.acme_on_a_trial().await;
    let owner = app.user_id("owner@acme.test").await;

    // The customer's form: the Stripe customer, by the owner; the trial's subscription row by
    // the owner's form or, when its webhook got there first, by that event.
    let (kind, actor, ..) = app
        .audit_row("billing_customers.insert", "billing_customers", "org_id")
        .await;
    assert_eq!(
        (kind.as_str(), actor.as_deref()),
        ("user", Some(owner.as_str())),
        "{}",
        app.audit_dump().await
    );
    let (kind, actor, after): (String, Option<String>, Option<String>) = sqlx::query_as(
        "SELECT actor_kind, actor_id, after->>'status' FROM audit_log
         WHERE entity = 'subscriptions' AND before IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .expect("the subscription's first row");
    assert!(
        (kind == "user" && actor.as_deref() == Some(owner.as_str())) || kind == "stripe_event",
        "{kind} {actor:?}"
    );
    assert_eq!(after.as_deref(), Some("trialing"));

    // A webhook: changed in Stripe, delivered, applied.
    app.change_in_stripe(&sub, &[("cancel_at_period_end", "true")])
        .await;
    app.wait_for(CANCELS, "true").await;
    let (kind, actor, _, before, after) = app
        .audit_row(
            "customer.subscription.updated",
            "subscriptions",
            "cancel_at_period_end",
        )
        .await;
    assert_eq!(kind, "stripe_event");
    assert!(actor.is_some_and(|id| id.starts_with("evt_")));
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("false"), Some("true"))
    );

    // The API: a key resumes the subscription (through the idempotent path).
    let secret = app.api_key_of("acme").await;
    let key_id: String = sqlx::query_scalar("SELECT id::text FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .expect("key");
    let resumed = app
        .another_browser()
        .post(app.url("/api/v1/subscription/resume"))
        .bearer_auth(&secret)
        .header("Idempotency-Key", "resume-1")
        .send()
        .await
        .expect("resume");
    assert_eq!(
        resumed.status(),
        StatusCode::OK,
        "{}",
        resumed.text().await.unwrap_or_default()
    );
    let (kind, actor, _, before, after) = app
        .audit_row(
            "subscriptions.update",
            "subscriptions",
            "cancel_at_period_end",
        )
        .await;
    assert_eq!(
        (kind.as_str(), actor.as_deref()),
        ("api_key", Some(key_id.as_str()))
    );
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("true"), Some("false"))
    );

    // A job: auto top-up charges the saved card; its purchase and credits are the job's.
    app.buy_and_return("1").await;
    let saved = app
        .submit(
            "/orgs/acme/credits",
            "/forms/credits/auto-top-up",
            &[
                ("enabled", "on"),
                ("below", "600"),
                ("packs", "1"),
                ("monthly_cap", "1"),
            ],
        )
        .await;
    assert_eq!(saved.status(), StatusCode::FOUND);
    let (kind, actor, _, before, after) = app
        .audit_row("credit_accounts.update", "credit_accounts", "auto_top_up")
        .await;
    assert_eq!(
        (kind.as_str(), actor.as_deref()),
        ("user", Some(owner.as_str()))
    );
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("false"), Some("true"))
    );
    app.wait_for(
        "SELECT actor_kind || ' ' || actor_id FROM audit_log
         WHERE entity = 'credit_ledger' AND after->>'kind' = 'top_up'",
        "job auto-top-up",
    )
    .await;
}

#[tokio::test]
async fn the_audit_log_refuses_update_delete_and_truncate() {
    let app = TestApp::spawn().await;
    app.acme_on_a_trial().await;
    let rows = app.count("SELECT count(*) FROM audit_log").await;
    assert!(rows > 0);
    for statement in [
        "UPDATE audit_log SET reason = 'rewritten'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ] {
        let refused = sqlx::query(statement)
            .execute(&app.pool)
            .await
            .expect_err(statement);
        assert!(
            refused.to_string().contains("append-only"),
            "{statement}: {refused}"
        );
    }
    assert_eq!(app.count("SELECT count(*) FROM audit_log").await, rows);
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log WHERE reason = 'rewritten'")
            .await,
        0
    );
}

#[tokio::test]
async fn owners_see_their_own_organizations_rows_and_admins_filter_everyones() {
    let app = TestApp::spawn().await;
    let acme_sub = app.acme_on_a_trial().await;
    let globex = app.another_browser();
    app.submit_with(
        &globex,
        "/signup",
        "/forms/signup",
        &[
            ("email", "owner@globex.test"),
            ("password", PASSWORD),
            ("org_name", "Globex"),
        ],
    )
    .await;
    let started = app
        .submit_with(
            &globex,
            "/orgs/globex/plans",
            "/forms/billing/trial",
            &[("slug", "globex"), ("plan", "starter")],
        )
        .await;
    assert_eq!(started.status(), StatusCode::FOUND);
    let globex_sub: String = sqlx::query_scalar(
        "SELECT stripe_subscription_id FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'globex'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("globex's trial");

    let own = app.get("/orgs/acme/audit").await;
    assert_eq!(own.status(), StatusCode::OK);
    let own = own.text().await.expect("html");
    assert!(
        own.contains(&acme_sub) && !own.contains(&globex_sub),
        "{own}"
    );
    assert!(own.contains("owner@acme.test"), "who is named: {own}");
    assert_eq!(
        app.get("/orgs/globex/audit").await.status(),
        StatusCode::NOT_FOUND,
        "another organization's log is not found"
    );

    let admin = app.platform_admin().await;
    let filtered = app
        .get_with(&admin, "/admin/audit?org=globex")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        filtered.contains(&globex_sub) && !filtered.contains(&acme_sub),
        "{filtered}"
    );
    let customers = app
        .get_with(&admin, "/admin/audit?actor=user&action=billing_customers.*")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        customers.contains("billing_customers.insert") && !customers.contains("subscriptions."),
        "{customers}"
    );
    let jobs = app
        .get_with(&admin, "/admin/audit?actor=job")
        .await
        .text()
        .await
        .expect("html");
    assert!(!jobs.contains(&acme_sub) && !jobs.contains(&globex_sub));
    let by_date = app
        .get_with(&admin, "/admin/audit?from=2000-01-01&to=2000-01-02")
        .await
        .text()
        .await
        .expect("html");
    assert!(!by_date.contains(&acme_sub) && !by_date.contains(&globex_sub));
    assert_eq!(
        app.get_with(&admin, "/admin/audit?actor=robot")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get_with(&admin, "/admin/audit?from=yesterday")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.get("/admin/audit").await.status(),
        StatusCode::FORBIDDEN,
        "customers cannot read everyone's log"
    );
}

#[tokio::test]
async fn an_admin_resends_a_message_with_a_reason_and_the_audit_log_keeps_it() {
    let app = TestApp::spawn().await;
    app.acme_on_a_trial().await;
    let admin = app.platform_admin().await;
    let caught = "SELECT count(*)::text FROM caught_mail WHERE subject ILIKE '%trial%'";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let original: i64 = loop {
        let sent: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM notification_outbox
             WHERE kind = 'trial_started' AND status = 'sent' ORDER BY id LIMIT 1",
        )
        .fetch_optional(&app.pool)
        .await
        .expect("outbox");
        if let Some(id) = sent {
            break id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the trial mail was never sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let before: String = sqlx::query_scalar(caught)
        .fetch_one(&app.pool)
        .await
        .expect("caught");
    let id = original.to_string();
    let history = "/orgs/acme/notifications";
    let page = app
        .get_with(&admin, history)
        .await
        .text()
        .await
        .expect("page");
    assert!(
        page.contains(r#"action="/forms/notifications/resend""#),
        "{page}"
    );

    // Without a reason nothing is written.
    let rows = app.count("SELECT count(*) FROM notification_outbox").await;
    let refused = app
        .submit_with(
            &admin,
            history,
            "/forms/notifications/resend",
            &[("id", id.as_str()), ("reason", "  ")],
        )
        .await;
    assert_eq!(location(&refused), history);
    let shown = app
        .follow_with(&admin, &refused)
        .await
        .text()
        .await
        .expect("html");
    assert!(
        shown.contains("Nothing was resent: Give a reason"),
        "{shown}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM notification_outbox").await,
        rows
    );

    let resent = app
        .submit_with(
            &admin,
            history,
            "/forms/notifications/resend",
            &[("id", id.as_str()), ("reason", "the customer lost it")],
        )
        .await;
    assert_eq!(location(&resent), history);
    assert_eq!(
        app.count("SELECT count(*) FROM notification_outbox").await,
        rows + 1
    );
    let again = (before.parse::<i64>().expect("count") + 1).to_string();
    app.wait_for(caught, &again).await;
    let (kind, actor, reason, old, new): (
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = sqlx::query_as(
        "SELECT actor_kind, actor_id, reason, before->>'id', after->>'status'
             FROM audit_log WHERE action = 'admin.resend_notification'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("audit row");
    assert_eq!(kind, "user");
    assert_eq!(actor, Some(app.user_id("ops@platform.test").await));
    assert_eq!(reason.as_deref(), Some("the customer lost it"));
    assert_eq!(old, Some(id.clone()));
    assert_eq!(new.as_deref(), Some("pending"));

    // The organization's owner sees the history without resend buttons, and cannot resend.
    let owner_page = app.get(history).await.text().await.expect("page");
    assert!(
        !owner_page.contains("/forms/notifications/resend"),
        "{owner_page}"
    );
    let forbidden = app
        .submit(
            history,
            "/forms/notifications/resend",
            &[("slug", "acme"), ("id", id.as_str()), ("reason", "mine")],
        )
        .await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.count("SELECT count(*) FROM notification_outbox").await,
        rows + 1
    );
}
