//! The operators' revenue metrics on a fixed history built through the emulator and its clock:
//! a trial that converts, one that expires, an upgrade, a downgrade, a churn, an abandoned
//! Checkout, credit packs with a refund and credits used. The live figures, the snapshot the
//! job writes, the page and its CSV downloads are checked against figures worked out by hand;
//! the job run twice (and by two callers at once) for one day writes one row.

use billing_portal::revenue::figures::DayFigures;
use billing_portal::revenue::snapshots;
use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::harness::{hybrid_catalog, location, TestApp, PASSWORD};

/// An organization's owner, signed in in a browser of their own.
struct Owner {
    client: reqwest::Client,
    slug: &'static str,
}

impl TestApp {
    async fn owner(&self, slug: &'static str) -> Owner {
        let client = self.another_browser();
        let email = format!("{slug}@metrics.test");
        let signed_up = self
            .submit_with(
                &client,
                "/signup",
                "/forms/signup",
                &[
                    ("email", &email),
                    ("password", PASSWORD),
                    ("org_name", slug),
                ],
            )
            .await;
        assert_eq!(signed_up.status(), StatusCode::FOUND);
        Owner { client, slug }
    }

    async fn form(&self, who: &Owner, page: &str, action: &str, fields: &[(&str, &str)]) -> String {
        let page = format!("/orgs/{}{page}", who.slug);
        let answer = self.submit_with(&who.client, &page, action, fields).await;
        assert_eq!(answer.status(), StatusCode::FOUND, "{action}");
        location(&answer)
    }

    /// Opens Checkout for a plan and returns the hosted page's address.
    async fn checkout(&self, who: &Owner, plan: &str) -> String {
        self.form(
            who,
            "/plans",
            "/forms/billing/checkout",
            &[("slug", who.slug), ("plan", plan)],
        )
        .await
    }

    /// Pays a hosted Checkout page with 4242 and comes back through the success page.
    async fn pay_and_return(&self, who: &Owner, url: &str) {
        let paid = self.pay_checkout(url, "4242 4242 4242 4242").await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let success = location(&paid);
        self.get_with(&who.client, &success[self.base.len()..])
            .await;
    }

    async fn subscribe(&self, who: &Owner, plan: &str) {
        let url = self.checkout(who, plan).await;
        self.pay_and_return(who, &url).await;
    }

    async fn trial(&self, who: &Owner, plan: &str) {
        self.form(
            who,
            "/plans",
            "/forms/billing/trial",
            &[("slug", who.slug), ("plan", plan)],
        )
        .await;
    }

    async fn change_to(&self, who: &Owner, plan: &str) {
        let page = format!("/billing/change?plan={plan}");
        self.form(who, &page, "/forms/billing/change", &[("plan", plan)])
            .await;
    }

    /// Puts a card on file through the customer portal.
    async fn add_card(&self, who: &Owner) {
        let portal = self
            .form(
                who,
                "/billing",
                "/forms/billing/portal",
                &[("slug", who.slug)],
            )
            .await;
        let changed = self
            .another_browser()
            .post(format!("{portal}/card"))
            .form(&[
                ("card_number", "4242 4242 4242 4242"),
                ("card_expiry", "12/34"),
                ("card_cvc", "123"),
            ])
            .send()
            .await
            .expect("card");
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    }

    async fn subscription_of(&self, slug: &str) -> String {
        sqlx::query_scalar(
            "SELECT s.stripe_subscription_id FROM subscriptions s
             JOIN organizations o ON o.id = s.org_id WHERE o.slug = $1",
        )
        .bind(slug)
        .fetch_one(&self.pool)
        .await
        .expect("subscription")
    }

    async fn stripe_ok(&self, method: Method, path: &str, form: &[(&str, &str)]) {
        let answer = self
            .stripe_call(method, path)
            .form(form)
            .send()
            .await
            .expect("stripe");
        assert_eq!(answer.status(), StatusCode::OK, "{path}");
    }

    async fn admin(&self) -> reqwest::Client {
        let admin = self.another_browser();
        self.submit_with(
            &admin,
            "/signup",
            "/forms/signup",
            &[
                ("email", "ops@metrics.test"),
                ("password", PASSWORD),
                ("org_name", "Ops"),
            ],
        )
        .await;
        self.cli_ok(&["create-admin", "ops@metrics.test"]);
        admin
    }

    /// The history every test here starts from; answers the upgrader's proration invoice.
    async fn fixed_history(&self) -> i64 {
        self.stripe_ready().await;
        // A trial with a card on file (converts) and one without (expires).
        let converts = self.owner("converts").await;
        self.trial(&converts, "pro").await;
        self.add_card(&converts).await;
        let expires = self.owner("expires").await;
        self.trial(&expires, "starter").await;
        // Starter, then an upgrade to Pro (prorated now).
        let upgrader = self.owner("upgrader").await;
        self.subscribe(&upgrader, "starter").await;
        self.change_to(&upgrader, "pro").await;
        // Pro, then a downgrade to Starter (Stripe's price changes now; the plan is kept).
        let downgrader = self.owner("downgrader").await;
        self.subscribe(&downgrader, "pro").await;
        self.change_to(&downgrader, "starter").await;
        // An abandoned Checkout, then Starter, then canceled in Stripe at once.
        let churner = self.owner("churner").await;
        let abandoned = self.checkout(&churner, "pro").await;
        let session = abandoned.rsplit('/').next().expect("session id").to_owned();
        self.stripe_ok(
            Method::POST,
            &format!("/v1/checkout/sessions/{session}/expire"),
            &[],
        )
        .await;
        self.wait_for(
            "SELECT count(*)::text FROM checkout_sessions WHERE status = 'expired'",
            "1",
        )
        .await;
        self.subscribe(&churner, "starter").await;
        let sub = self.subscription_of("churner").await;
        self.stripe_ok(Method::DELETE, &format!("/v1/subscriptions/{sub}"), &[])
            .await;
        self.wait_for(
            "SELECT count(*)::text FROM subscriptions WHERE status = 'canceled'",
            "1",
        )
        .await;
        // Two packs ($40, 1,000 credits), $10 of it refunded, 12 small actions on Free (10
        // included, 2 from credits).
        let packs = self.owner("packs").await;
        let url = self
            .form(
                &packs,
                "/credits",
                "/forms/credits/checkout",
                &[("packs", "2")],
            )
            .await;
        self.pay_and_return(&packs, &url).await;
        let intent: String = sqlx::query_scalar(
            "SELECT payment_intent_id FROM credit_purchases WHERE status = 'paid'",
        )
        .fetch_one(&self.pool)
        .await
        .expect("intent");
        self.stripe_ok(
            Method::POST,
            "/v1/refunds",
            &[("payment_intent", &intent), ("amount", "1000")],
        )
        .await;
        let key = self
            .cli_ok(&["api-key", "create", "packs"])
            .trim()
            .to_owned();
        let actions: Vec<_> = (0..12)
            .map(|i| json!({"tier": "small", "idempotency_key": format!("m-{i}")}))
            .collect();
        let used = self
            .another_browser()
            .post(self.url("/api/v1/usage/batch"))
            .bearer_auth(&key)
            .json(&json!({ "actions": actions }))
            .send()
            .await
            .expect("usage");
        assert_eq!(used.status(), StatusCode::OK);
        // Eight days on, both trials have ended.
        self.advance_stripe_clock(8 * 86_400).await;
        self.wait_for(
            "SELECT count(*)::text FROM subscriptions WHERE status = 'canceled'",
            "2",
        )
        .await;
        self.wait_for(
            "SELECT string_agg(status, ',') FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'converts'",
            "active",
        )
        .await;
        self.wait_for("SELECT count(*)::text FROM credit_refunds", "1")
            .await;
        self.settled().await;
        let proration: i64 = sqlx::query_scalar(
            "SELECT i.amount_paid FROM invoices i JOIN organizations o ON o.id = i.org_id
             WHERE o.slug = 'upgrader' AND i.amount_paid <> 999",
        )
        .fetch_one(&self.pool)
        .await
        .expect("the upgrade's invoice");
        // Seconds into the month the proration is almost all of $99.00 - $9.99.
        assert!((8_890..=8_901).contains(&proration), "{proration}");
        proration
    }
}

/// Checks one day's figures against the hand-computed history.
async fn assert_hand_computed(app: &TestApp, f: &DayFigures, proration: i64) {
    let s = &f.subscriptions;
    // converts Pro 9,900 + upgrader Pro 9,900 + downgrader Starter 999; the churner and the
    // expired trial pay nothing.
    assert_eq!(s.mrr.get("usd"), Some(&20_799));
    let m = &s.movement["usd"];
    // new: upgrader 999, downgrader 9,900, churner 999, the converted trial 9,900;
    // expansion 9,900 - 999; contraction 9,900 - 999; churned: the churner's 999.
    assert_eq!(
        (m.new, m.expansion, m.contraction, m.churned, m.reactivated),
        (21_798, 8_901, 8_901, 999, 0)
    );
    assert_eq!(m.net(), 20_799);
    let plans: Vec<(&str, i64)> = s
        .active_by_plan
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(plans, vec![("pro", 2), ("starter", 1)]);
    assert_eq!(s.trialing, 0);
    assert_eq!(
        (s.trials.started, s.trials.converted, s.trials.expired),
        (2, 1, 1)
    );
    assert_eq!((s.paying_customers, s.churned_customers), (3, 1));
    let c = f.checkouts;
    // upgrader, downgrader, the churner twice (one abandoned), the packs.
    assert_eq!((c.started, c.completed, c.abandoned), (5, 4, 1));
    let cr = f.credits;
    assert_eq!(
        (
            cr.packs_sold,
            cr.millicredits_sold,
            cr.millicredits_consumed
        ),
        (2, 1_000_000, 2_000)
    );
    let r = f.revenue["usd"];
    // Invoices: 999 + proration (upgrader), 9,900 (downgrader), 999 (churner), 9,900 (the
    // converted trial); packs 4,000; refunded 1,000.
    assert_eq!(r.gross, 25_798 + proration);
    assert_eq!(r.refunds, 1_000);
    assert_eq!(r.net(), 24_798 + proration);
    let w = f.webhooks;
    assert_eq!(
        w.received,
        app.count("SELECT count(*) FROM webhook_events").await
    );
    assert_eq!(
        w.applied,
        app.count("SELECT count(*) FROM webhook_events WHERE status IN ('applied', 'ignored')")
            .await
    );
    assert!(w.received > 10, "{w:?}");
    assert_eq!((w.failed, w.pending), (0, 0));
    assert!(
        w.median_lag_seconds.is_some_and(|l| (0..60).contains(&l)),
        "{w:?}"
    );
}

#[tokio::test]
async fn metrics_of_a_fixed_history_match_the_hand_computed_figures() {
    let app = TestApp::spawn().await;
    let proration = app.fixed_history().await;
    let catalog = hybrid_catalog();
    let today = Utc::now().date_naive();
    let live = snapshots::compute(&app.pool, &snapshots::prices(&catalog), today, today)
        .await
        .expect("live figures");
    assert_hand_computed(&app, &live[0], proration).await;

    // The job, run as if tomorrow had come, stores today's figures as they were.
    let written = snapshots::run_once(&app.pool, &catalog, today + Duration::days(1))
        .await
        .expect("job");
    assert_eq!(written, Some(1));
    let stored: serde_json::Value =
        sqlx::query_scalar("SELECT figures FROM revenue_snapshots WHERE day = $1")
            .bind(today)
            .fetch_one(&app.pool)
            .await
            .expect("snapshot");
    let stored: DayFigures = serde_json::from_value(stored).expect("figures");
    assert_hand_computed(&app, &stored, proration).await;

    // The page: a named chart and a table beside each metric, the definitions, the CSV links.
    let admin = app.admin().await;
    let page = app.get_with(&admin, "/admin/metrics").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains(r#"role="img" aria-label="MRR and ARR (USD): MRR per day"#),
        "{html}"
    );
    assert!(html.contains("<title>Trials: Started, Converted, Expired per day"));
    // MRR $207.99 and ARR $2,495.88 at the end; 1 of 2 ended trials converted.
    for figure in [
        "$207.99",
        "$2495.88",
        "50.0%",
        "<td>2</td><td>1</td><td>1</td>",
    ] {
        assert!(html.contains(figure), "{figure} in {html}");
    }
    assert!(
        html.contains(r#"<h2 id="definitions">Definitions</h2>"#),
        "{html}"
    );
    assert!(html.contains("it left the trial for active"));
    assert!(html.contains(r#"href="/admin/metrics/csv/mrr-usd?days=30""#));
    assert!(html.contains(r#"<option value="30" selected"#), "{html}");
    let longer = app.get_with(&admin, "/admin/metrics?days=365").await;
    assert_eq!(longer.status(), StatusCode::OK);
    assert!(longer
        .text()
        .await
        .expect("html")
        .contains(r#"<option value="365" selected"#));
    let bad = app.get_with(&admin, "/admin/metrics?days=7").await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad
        .text()
        .await
        .expect("html")
        .contains("The range must be 30, 90 or 365 days."));

    // The CSV of a table: raw numbers, one row per day, today's last.
    let csv = app
        .get_with(&admin, "/admin/metrics/csv/mrr-usd?days=30")
        .await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert_eq!(csv.headers()["content-type"], "text/csv; charset=utf-8");
    let first = today - Duration::days(29);
    assert_eq!(
        csv.headers()["content-disposition"],
        format!("attachment; filename=\"metrics-mrr-usd-{first}-to-{today}.csv\"").as_str()
    );
    let body = csv.text().await.expect("csv");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        "day,\"MRR (usd, minor units)\",\"ARR (usd, minor units)\""
    );
    assert_eq!(lines.len(), 31);
    assert_eq!(lines[30], format!("{today},20799,249588"));
    let movement = app
        .get_with(&admin, "/admin/metrics/csv/movement-usd?days=90")
        .await
        .text()
        .await
        .expect("csv");
    assert!(
        movement.ends_with(&format!("{today},21798,8901,8901,999,0,20799\r\n")),
        "{movement}"
    );
    let unknown = app
        .get_with(&admin, "/admin/metrics/csv/nothing?days=30")
        .await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Only platform admins: an owner gets 403 on both, a stranger is sent to log in.
    let owner = app.owner("outsider").await;
    assert_eq!(
        app.get_with(&owner.client, "/admin/metrics").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_with(&owner.client, "/admin/metrics/csv/mrr-usd")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let stranger = app.another_browser();
    let sent = app.get_with(&stranger, "/admin/metrics/csv/mrr-usd").await;
    assert!(sent.status().is_redirection(), "{}", sent.status());
    assert!(location(&sent).starts_with("/login"), "{}", location(&sent));
}

#[tokio::test]
async fn the_snapshot_job_writes_one_row_per_day_however_often_and_however_many_run_it() {
    let app = TestApp::spawn().await;
    app.stripe_ready().await;
    let owner = app.owner("steady").await;
    app.subscribe(&owner, "starter").await;
    app.settled().await;
    let catalog = hybrid_catalog();
    let today = Utc::now().date_naive();
    let tomorrow = today + Duration::days(1);
    let rows = || app.count("SELECT count(*) FROM revenue_snapshots");

    // Today is not finished: nothing is stored for it yet.
    assert_eq!(
        snapshots::run_once(&app.pool, &catalog, today)
            .await
            .expect("job"),
        Some(0)
    );
    assert_eq!(rows().await, 0);
    // Two instances at once: one runs (the other skips or finds nothing left), one row.
    let (a, b) = tokio::join!(
        snapshots::run_once(&app.pool, &catalog, tomorrow),
        snapshots::run_once(&app.pool, &catalog, tomorrow)
    );
    let (a, b) = (a.expect("first"), b.expect("second"));
    assert_eq!(a.unwrap_or(0) + b.unwrap_or(0), 1, "{a:?} {b:?}");
    assert_eq!(rows().await, 1);
    // Again, and the day rewritten on purpose: still one row, with the same figures.
    assert_eq!(
        snapshots::run_once(&app.pool, &catalog, tomorrow)
            .await
            .expect("job"),
        Some(0)
    );
    let before: serde_json::Value = sqlx::query_scalar("SELECT figures FROM revenue_snapshots")
        .fetch_one(&app.pool)
        .await
        .expect("row");
    snapshots::write_days(&app.pool, &catalog, today, today)
        .await
        .expect("rewrite");
    snapshots::write_days(&app.pool, &catalog, today, today)
        .await
        .expect("rewrite");
    assert_eq!(rows().await, 1);
    let after: serde_json::Value = sqlx::query_scalar("SELECT figures FROM revenue_snapshots")
        .fetch_one(&app.pool)
        .await
        .expect("row");
    assert_eq!(before, after);
    assert_eq!(after["subscriptions"]["mrr"]["usd"], 999);
    // Each run is recorded for the operators.
    assert!(
        app.count("SELECT count(*) FROM job_runs WHERE job = 'revenue-snapshots' AND ok")
            .await
            >= 3
    );
}

/// Polls `sql` (one bigint) until it reaches `want`, for at most 60 s.
async fn wait_at_least(app: &TestApp, sql: &str, want: i64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let got = app.count(sql).await;
        if got >= want {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{sql}: {got}, wanted {want}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_fresh_demo_has_months_of_real_history() {
    let app = TestApp::spawn_with(|s| s.seed_demo = Some(true)).await;
    // The history plays in the background through the emulator and the webhook path.
    wait_at_least(
        &app,
        "SELECT count(*) FROM subscriptions s JOIN organizations o ON o.id = s.org_id
         WHERE o.name = 'Trial Works' AND s.status = 'trialing'",
        1,
    )
    .await;
    wait_at_least(
        &app,
        "SELECT count(*) FROM credit_purchases WHERE source = 'auto_top_up' AND status = 'paid'",
        1,
    )
    .await;
    app.settled().await;
    let state = |name: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_as::<_, (String, String, i64, bool)>(
                "SELECT s.plan_key, s.status,
                        (SELECT count(*) FROM invoices i WHERE i.org_id = o.id AND i.status = 'paid'),
                        s.past_due_since IS NOT NULL
                 FROM organizations o JOIN subscriptions s ON s.org_id = o.id WHERE o.name = $1",
            )
            .bind(name)
            .fetch_one(&pool)
            .await
            .expect(name)
        }
    };
    // Each paid plan, paid for three months plus the first invoice.
    assert_eq!(
        state("Starter Studio").await,
        ("starter".into(), "active".into(), 4, false)
    );
    assert_eq!(
        state("Pro Labs").await,
        ("pro".into(), "active".into(), 4, false)
    );
    assert_eq!(
        state("Max Industries").await,
        ("max".into(), "active".into(), 4, false)
    );
    // The last renewal failed: past due, in its grace period, three invoices paid.
    assert_eq!(
        state("Grace Period Inc").await,
        ("starter".into(), "past_due".into(), 3, true)
    );
    // Canceled after its first renewal.
    assert_eq!(
        state("Churned Ltd").await,
        ("pro".into(), "canceled".into(), 2, false)
    );
    // A trial started two days ago: about five days left.
    let left: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM s.trial_end - now())::float8 / 86400 FROM subscriptions s
         JOIN organizations o ON o.id = s.org_id WHERE o.name = 'Trial Works'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("trial");
    assert!((4.9..5.1).contains(&left), "{left}");
    // Usage through the API for the last four weeks; Credits Co used credits it bought. The
    // seeder records it through the API after the subscriptions settle, so it may still be going.
    wait_at_least(&app, "SELECT count(DISTINCT org_id) FROM usage_actions", 6).await;
    wait_at_least(
        &app,
        "SELECT count(DISTINCT (occurred_at AT TIME ZONE 'UTC')::date) FROM usage_actions",
        20,
    )
    .await;
    wait_at_least(
        &app,
        "SELECT count(*) FROM usage_actions WHERE millicredits > 0",
        1,
    )
    .await;
    // Demo Company stays within its free plan.
    assert_eq!(
        app.count(
            "SELECT count(*) FROM usage_actions u JOIN organizations o ON o.id = u.org_id
             WHERE o.name = 'Demo Company' AND u.counted_as <> 'included'"
        )
        .await,
        0
    );
    // And the metrics page has today's figures: MRR of the four paying plans and Credits Co.
    let catalog = hybrid_catalog();
    let today = Utc::now().date_naive();
    let live = snapshots::compute(&app.pool, &snapshots::prices(&catalog), today, today)
        .await
        .expect("live");
    // Starter ×3 (Studio, Grace in its grace period, Credits Co) + Pro + Max.
    assert_eq!(live[0].subscriptions.mrr["usd"], 3 * 999 + 9_900 + 49_999);
}
