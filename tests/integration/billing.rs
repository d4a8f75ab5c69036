//! Billing: the catalog in Stripe, and (as it grows) subscriptions end to end.

use billing_portal::billing::catalog;
use billing_portal::stripe_gateway::Gateway;
use stripe_product::price::ListPrice;

use crate::harness::{hybrid_catalog as hybrid, StandaloneStripe};

#[tokio::test]
async fn catalog_sync_creates_missing_prices_once() {
    let emu = StandaloneStripe::start().await;
    let gateway = Gateway::new(&emu.key, Some(&emu.base)).expect("gateway");
    let catalog = hybrid();

    let first = gateway.sync_catalog(&catalog).await.expect("first sync");
    assert_eq!(
        first.created,
        vec![
            "starter_monthly",
            "pro_monthly",
            "max_monthly",
            "credit_pack_500"
        ]
    );
    assert!(first.existing.is_empty() && first.mismatched.is_empty());
    let second = gateway.sync_catalog(&catalog).await.expect("second sync");
    assert!(
        second.created.is_empty(),
        "running it twice creates nothing"
    );
    assert_eq!(second.existing.len(), 4);

    let pro = ListPrice::new()
        .lookup_keys(vec!["pro_monthly".to_owned()])
        .send(&emu.stripe)
        .await
        .expect("list")
        .data
        .remove(0);
    assert_eq!(pro.unit_amount, Some(9900));
    assert_eq!(
        pro.recurring
            .map(|r| r.interval.as_str().to_owned())
            .as_deref(),
        Some("month")
    );
    assert_eq!(pro.metadata.get("plan").map(String::as_str), Some("pro"));

    // A catalog whose price no longer matches Stripe's is reported, not silently changed.
    let mut changed = catalog.clone();
    if let Some(plan) = changed.plans.iter_mut().find(|p| p.key == "pro") {
        plan.price = catalog::Price::Recurring {
            cents: 10900,
            interval: catalog::Interval::Month,
            lookup_key: "pro_monthly".into(),
        };
    }
    let third = gateway.sync_catalog(&changed).await.expect("third sync");
    assert_eq!(third.mismatched, vec!["pro_monthly"]);
}

#[tokio::test]
async fn stripe_sync_from_the_command_line() {
    let emu = StandaloneStripe::start().await;
    // The emulator runs on this test's runtime, so the command must not block it.
    let run = || {
        let base = emu.base.clone();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_billing-portal"))
            .arg("stripe-sync")
            .env("STRIPE_API_BASE", base)
            .env("STRIPE_SECRET_KEY", &emu.key)
            .output()
    };
    let first = run().await.expect("run");
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(String::from_utf8_lossy(&first.stdout).contains("created  pro_monthly"));
    let second = run().await.expect("run");
    assert!(String::from_utf8_lossy(&second.stdout).contains("exists   pro_monthly"));
    assert!(!String::from_utf8_lossy(&second.stdout).contains("created"));
}

// ---- Journeys through the portal, against its built-in emulator ----

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::harness::{authenticity_token, location, TestApp, PASSWORD};

impl TestApp {
    /// Waits until the start-up catalog sync has put the prices into the built-in emulator.
    pub(crate) async fn stripe_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .stripe_call(reqwest::Method::GET, "/v1/prices")
                .query(&[("lookup_keys[]", "credit_pack_500")])
                .send()
                .await
                .expect("prices")
                .json::<serde_json::Value>()
                .await
                .expect("json");
            if found["data"].as_array().is_some_and(|d| !d.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the catalog never reached the emulator"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn signed_up_owner(&self) {
        self.sign_up("owner@acme.test", PASSWORD, "Acme").await;
        self.stripe_ready().await;
    }

    /// Polls `sql` (one text value) until it equals `want`.
    pub(crate) async fn wait_for(&self, sql: &str, want: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got: Option<String> = sqlx::query_scalar(sql)
                .fetch_optional(&self.pool)
                .await
                .expect("query");
            if got.as_deref() == Some(want) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "waited for {sql} = {want}, last saw {got:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The emulator's deliveries, made or queued.
    pub(crate) async fn delivery_log(&self) -> Vec<serde_json::Value> {
        let log = self
            .stripe_call(reqwest::Method::GET, "/_emulator/deliveries")
            .send()
            .await
            .expect("deliveries")
            .json::<serde_json::Value>()
            .await
            .expect("json");
        log["data"].as_array().cloned().unwrap_or_default()
    }

    pub(crate) async fn deliveries(&self) -> i64 {
        self.delivery_log().await.len() as i64
    }

    /// Waits until the emulator has delivered every event and the inbox has applied them all.
    pub(crate) async fn settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all_delivered = self
                .delivery_log()
                .await
                .iter()
                .all(|x| x["delivered"] == true);
            let pending = self
                .count("SELECT count(*) FROM webhook_events WHERE status = 'pending'")
                .await;
            if all_delivered && pending == 0 {
                return;
            }
            assert!(Instant::now() < deadline, "webhooks never settled");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn billing_page(&self) -> String {
        let page = self.get("/orgs/acme/billing").await;
        assert_eq!(page.status(), StatusCode::OK);
        page.text().await.expect("html")
    }

    /// Pays the hosted Checkout page with a card, as a browser would; returns its redirect.
    pub(crate) async fn pay_checkout(&self, checkout_url: &str, card: &str) -> reqwest::Response {
        let browser = self.another_browser();
        browser
            .post(checkout_url)
            .form(&[
                ("email", "owner@acme.test"),
                ("card_number", card),
                ("card_expiry", "12/34"),
                ("card_cvc", "123"),
            ])
            .send()
            .await
            .expect("pay")
    }

    pub(crate) async fn advance_stripe_clock(&self, seconds: i64) {
        let answer = self
            .stripe_call(reqwest::Method::POST, "/_emulator/clock/advance")
            .form(&[("seconds", seconds.to_string())])
            .send()
            .await
            .expect("advance");
        assert_eq!(answer.status(), StatusCode::OK);
    }

    /// Opens Checkout for `plan` and returns the hosted page's URL.
    pub(crate) async fn open_checkout(&self, plan: &str) -> String {
        let response = self
            .submit(
                "/orgs/acme/plans",
                "/forms/billing/checkout",
                &[("slug", "acme"), ("plan", plan)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let url = location(&response);
        assert!(url.starts_with(&self.stripe_url("/checkout/cs_")), "{url}");
        url
    }

    /// Upgrade through Checkout with 4242 and the success page.
    pub(crate) async fn upgrade(&self, plan: &str) {
        let url = self.open_checkout(plan).await;
        let paid = self.pay_checkout(&url, "4242 4242 4242 4242").await;
        assert_eq!(paid.status(), StatusCode::SEE_OTHER);
        let success = location(&paid);
        let landed = self.get(&success[self.base.len()..]).await;
        assert_eq!(location(&landed), "/orgs/acme/billing");
    }
}

pub(crate) const PLAN: &str = "SELECT plan_key FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";
pub(crate) const STATUS: &str = "SELECT status FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";

#[tokio::test]
async fn plans_page_shows_every_plan_and_marks_the_current_one() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let html = app
        .get("/orgs/acme/plans")
        .await
        .text()
        .await
        .expect("html");
    for (name, price) in [
        ("Free", "Free"),
        ("Starter", "$9.99 / month"),
        ("Pro", "$99.00 / month"),
        ("Max", "$499.99 / month"),
    ] {
        assert!(
            html.contains(&format!("<h2>{name}</h2>")) && html.contains(price),
            "{name}"
        );
    }
    assert!(html.contains("2500 Small") && html.contains("160 XL"));
    assert!(
        html.contains("<article aria-current=\"true\" class=\"card plan current\"><h2>Free</h2>")
    );
    assert!(html.contains("Start 7-day trial") && html.contains("Upgrade to Pro"));
}

/// The page's policy allows scripts only under this response's nonce: every inline script (the
/// page's data, serialized by Leptos) carries it, and there is no inline style or handler.
fn assert_only_nonced_scripts(headers: &reqwest::header::HeaderMap, html: &str, what: &str) {
    let csp = headers
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{what}: {csp}"
    );
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{what}: no nonce in {csp}"));
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(
        !scripts.is_empty(),
        "{what}: the page's data is in a script"
    );
    for script in scripts {
        let tag = &script[..script.find('>').unwrap_or(script.len())];
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "{what}: a script without the nonce: <script{tag}>"
        );
    }
    for inline in ["<style", " style=", " onclick=", "javascript:"] {
        assert!(!html.contains(inline), "{what} has inline code: {inline}");
    }
}

#[tokio::test]
async fn the_billing_pages_run_no_inline_code_but_their_nonced_data() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    for path in [
        "/orgs/acme/billing",
        "/orgs/acme/plans",
        "/orgs/acme/billing/change?plan=max",
        "/billing/cancel?org=acme",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        let html = response.text().await.expect("html");
        assert_only_nonced_scripts(&headers, &html, path);
    }
}

#[tokio::test]
async fn a_trial_starts_without_a_card_and_shows_a_countdown() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let response = app.start_trial("acme", "pro").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/orgs/acme/billing");
    let html = app.billing_page().await;
    assert!(html.contains("Your 7-day trial of Pro has started."));
    assert!(html.contains("Pro plan") && html.contains("Status: trialing"));
    assert!(
        html.contains("Trial: 6 days 23 hours left.") || html.contains("Trial: 7 days left."),
        "{html}"
    );
    assert!(html.contains("2500 Small"), "the trial plan's limits");
    // The organization's own page shows the countdown and the limits too.
    let org = app.get("/orgs/acme").await.text().await.expect("html");
    assert!(
        org.contains("Pro plan") && org.contains("Trial: ") && org.contains("160 XL"),
        "{org}"
    );
    // Only one trial per organization (the form is gone from the plans page; a post anyway is
    // sent back to it with the rule that refused it).
    let plans = app
        .get("/orgs/acme/plans")
        .await
        .text()
        .await
        .expect("html");
    assert!(!plans.contains("Start 7-day trial"), "{plans}");
    let again = app.start_trial("acme", "max").await;
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(location(&again), "/orgs/acme/plans");
    let page = app.follow(&again).await.text().await.expect("html");
    assert!(
        page.contains("This organization has already had a trial or a subscription."),
        "{page}"
    );
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 1);
}

#[tokio::test]
async fn trial_end_without_a_card_moves_the_org_to_free() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    app.advance_stripe_clock(8 * 86_400).await;
    app.wait_for(STATUS, "canceled").await;
    let html = app.billing_page().await;
    assert!(html.contains("Free plan"), "{html}");
}

#[tokio::test]
async fn upgrading_through_checkout_shows_the_plan_at_once_and_lists_the_invoice() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    // Starting Checkout redirects the form's post to Stripe, so the plans page lets forms go there.
    let plans = app.get("/orgs/acme/plans").await;
    let csp = plans
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains(&format!(
            "form-action 'self' https: {};",
            app.stripe_url("")
        )),
        "{csp}"
    );
    let url = app.open_checkout("starter").await;
    // One open checkout per organization: asking again goes back to the same one.
    assert_eq!(app.open_checkout("pro").await, url);
    let paid = app.pay_checkout(&url, "4242 4242 4242 4242").await;
    let success = location(&paid);
    assert!(
        success.contains("/billing/success?session_id=cs_"),
        "{success}"
    );
    let landed = app.get(&success[app.base.len()..]).await;
    assert_eq!(landed.status(), StatusCode::FOUND);
    assert_eq!(location(&landed), "/orgs/acme/billing");
    // Applied by the success page itself, whether or not the webhook came first.
    let html = app.billing_page().await;
    assert!(
        html.contains("Thank you! Acme is now on the Starter plan."),
        "{html}"
    );
    assert!(html.contains("Starter plan") && html.contains("Status: active"));
    app.wait_for("SELECT status FROM invoices LIMIT 1", "paid")
        .await;
    let html = app.billing_page().await;
    assert!(html.contains("$9.99") && html.contains(">View</a>") && html.contains(">PDF</a>"));
    assert_eq!(
        app.count("SELECT count(*) FROM checkout_sessions WHERE status = 'open'")
            .await,
        0
    );
}

#[tokio::test]
async fn a_declined_card_changes_nothing_and_the_cancel_page_says_so() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let url = app.open_checkout("pro").await;
    let declined = app.pay_checkout(&url, "4000 0000 0000 0002").await;
    assert_eq!(declined.status(), StatusCode::PAYMENT_REQUIRED);
    assert!(declined
        .text()
        .await
        .expect("html")
        .contains("Your card was declined."));
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 0);
    let page = app
        .get("/billing/cancel?org=acme")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("Nothing was charged."));
    assert!(app.billing_page().await.contains("Free plan"));
}

#[tokio::test]
async fn upgrade_shows_the_prorated_amount_first_and_downgrade_waits_for_period_end() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    let preview = app
        .get("/orgs/acme/billing/change?plan=pro")
        .await
        .text()
        .await
        .expect("html");
    // Moments into the month the proration is almost the whole difference: $99.00 - $9.99.
    assert!(
        preview.contains("$89.0") || preview.contains("$88.9"),
        "{preview}"
    );
    let upgraded = app
        .submit(
            "/orgs/acme/billing/change?plan=pro",
            "/forms/billing/change",
            &[("plan", "pro")],
        )
        .await;
    assert_eq!(upgraded.status(), StatusCode::FOUND);
    assert_eq!(location(&upgraded), "/orgs/acme/billing");
    let html = app.billing_page().await;
    assert!(
        html.contains("You are now on Pro.") && html.contains("Pro plan"),
        "{html}"
    );
    app.wait_for(PLAN, "pro").await;

    let downgraded = app
        .submit(
            "/orgs/acme/billing/change?plan=starter",
            "/forms/billing/change",
            &[("plan", "starter")],
        )
        .await;
    assert_eq!(downgraded.status(), StatusCode::FOUND);
    assert_eq!(location(&downgraded), "/orgs/acme/billing");
    let html = app.billing_page().await;
    assert!(
        html.contains("Pro plan") && html.contains("Switches to Starter on"),
        "{html}"
    );
}

#[tokio::test]
async fn cancel_at_period_end_and_resume() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    let canceled = app
        .submit("/orgs/acme/billing", "/forms/billing/cancel", &[])
        .await;
    assert_eq!(canceled.status(), StatusCode::FOUND);
    assert_eq!(location(&canceled), "/orgs/acme/billing");
    let html = app.billing_page().await;
    assert!(html.contains("Your subscription ends on") && html.contains("Resume subscription"));
    let resumed = app
        .submit("/orgs/acme/billing", "/forms/billing/resume", &[])
        .await;
    assert_eq!(resumed.status(), StatusCode::FOUND);
    let html = app.billing_page().await;
    assert!(html.contains("Your subscription will renew.") && html.contains("Renews on"));
    let portal = app
        .submit("/orgs/acme/billing", "/forms/billing/portal", &[])
        .await;
    assert_eq!(portal.status(), StatusCode::FOUND);
    assert!(location(&portal).starts_with(&app.stripe_url("/portal/bps_")));
}

#[tokio::test]
async fn members_see_billing_but_cannot_change_it() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@acme.test", "Bobs").await;
    app.signed_up_owner().await;
    let link = app
        .invitation_link(&app.client, "acme", "bob@acme.test", "member")
        .await;
    app.accept_with(&bob, &link).await;
    let page = app
        .get_with(&bob, "/orgs/acme/plans")
        .await
        .text()
        .await
        .expect("html");
    assert!(!page.contains("Upgrade to"));
    let refused = app
        .submit_with(
            &bob,
            "/orgs/acme/plans",
            "/forms/billing/trial",
            &[("slug", "acme"), ("plan", "pro")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 0);
    // Nor Checkout, nor the change preview.
    let checkout = app
        .submit_with(
            &bob,
            "/orgs/acme/plans",
            "/forms/billing/checkout",
            &[("slug", "acme"), ("plan", "pro")],
        )
        .await;
    assert_eq!(checkout.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM checkout_sessions").await, 0);
    assert_eq!(
        app.get_with(&bob, "/orgs/acme/billing/change?plan=pro")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get_with(&bob, "/orgs/nobodys/billing").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_declined_upgrade_goes_back_to_the_plans_page_and_keeps_the_plan() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    app.wait_for(PLAN, "starter").await;
    // A card that attaches but whose charges fail.
    app.change_card("4000 0000 0000 0341").await;
    let declined = app
        .submit(
            "/orgs/acme/billing/change?plan=pro",
            "/forms/billing/change",
            &[],
        )
        .await;
    assert_eq!(declined.status(), StatusCode::FOUND);
    assert_eq!(location(&declined), "/orgs/acme/plans");
    let page = app.follow(&declined).await.text().await.expect("html");
    assert!(
        page.contains(
            "Your card was declined; the plan did not change. Update your card and try again."
        ),
        "{page}"
    );
    app.settled().await;
    let plan: String = sqlx::query_scalar(PLAN)
        .fetch_one(&app.pool)
        .await
        .expect("plan");
    assert_eq!(plan, "starter");
    assert!(app.billing_page().await.contains("Starter plan"));
}

#[tokio::test]
async fn stripe_out_of_reach_and_a_plan_not_for_sale_get_their_own_answers() {
    // Nothing listens there.
    let gone = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        format!("http://{addr}")
    };
    let app = TestApp::spawn_with(|s| {
        s.stripe_secret_key = Some("sk_test_unreachable".parse().expect("secret"));
        s.stripe_api_base = Some(gone);
    })
    .await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let down = app
        .submit(
            "/orgs/acme/plans",
            "/forms/billing/checkout",
            &[("plan", "pro")],
        )
        .await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(location(&down).is_empty(), "no redirect");
    assert_eq!(
        down.headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("5")
    );
    let page = down.text().await.expect("html");
    assert!(
        page.contains("Stripe could not be reached, so nothing was changed"),
        "{page}"
    );
    for plan in ["free", "platinum"] {
        let refused = app
            .submit(
                "/orgs/acme/plans",
                "/forms/billing/checkout",
                &[("plan", plan)],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{plan}");
        let page = refused.text().await.expect("html");
        assert!(
            page.contains(&format!("“{plan}” is not a plan you can buy.")),
            "{page}"
        );
    }
    for table in [
        "billing_customers",
        "checkout_sessions",
        "trial_grants",
        "subscriptions",
    ] {
        assert_eq!(
            app.count(&format!("SELECT count(*) FROM {table}")).await,
            0,
            "{table}"
        );
    }
}

/// What a billing form could change, read in one go.
async fn billing_state(app: &TestApp) -> (String, String, bool, i64, i64, i64) {
    let (plan, status, canceling): (String, String, bool) = sqlx::query_as(
        "SELECT plan_key, status, cancel_at_period_end FROM subscriptions s
         JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("subscription");
    (
        plan,
        status,
        canceling,
        app.count("SELECT count(*) FROM checkout_sessions").await,
        app.count("SELECT count(*) FROM trial_grants").await,
        // Portal sessions, Checkout sessions, customers: anything asked of Stripe.
        app.count("SELECT count(*) FROM stripe_emulator.objects")
            .await,
    )
}

#[tokio::test]
async fn every_billing_form_refuses_a_missing_or_foreign_token_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    app.settled().await;
    let before = billing_state(&app).await;
    // A token of another session: someone else's browser.
    let other = app.another_browser();
    let page = app
        .get_with(&other, "/login")
        .await
        .text()
        .await
        .expect("html");
    let foreign = authenticity_token(&page);
    // The owner's browser has a token of its own (loaded, never sent).
    app.get("/orgs/acme/billing").await;
    let forms: [(&str, &[(&str, &str)]); 6] = [
        ("/forms/billing/trial", &[("slug", "acme"), ("plan", "pro")]),
        (
            "/forms/billing/checkout",
            &[("slug", "acme"), ("plan", "pro")],
        ),
        (
            "/forms/billing/change",
            &[("slug", "acme"), ("plan", "pro")],
        ),
        ("/forms/billing/cancel", &[("slug", "acme")]),
        ("/forms/billing/resume", &[("slug", "acme")]),
        ("/forms/billing/portal", &[("slug", "acme")]),
    ];
    for (action, fields) in forms {
        let missing = app
            .client
            .post(app.url(action))
            .form(fields)
            .send()
            .await
            .expect("POST");
        assert_eq!(
            missing.status(),
            StatusCode::FORBIDDEN,
            "{action} without a token"
        );
        assert!(location(&missing).is_empty(), "{action}: no redirect");
        let with_foreign = [fields, &[("authenticity_token", foreign.as_str())]].concat();
        let forged = app
            .client
            .post(app.url(action))
            .form(&with_foreign)
            .send()
            .await
            .expect("POST");
        assert_eq!(
            forged.status(),
            StatusCode::FORBIDDEN,
            "{action} with a foreign token"
        );
        assert!(
            forged
                .text()
                .await
                .expect("html")
                .contains("This form has expired"),
            "{action}"
        );
    }
    assert_eq!(billing_state(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn billing_read_functions_refuse_anonymous_callers_and_outsiders() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    let outsider = app.person("eve@evil.test", "Evil").await;
    let reads: [(&str, &[(&str, &str)]); 4] = [
        ("/forms/read/billing", &[("slug", "acme")]),
        ("/forms/read/plans", &[("slug", "acme")]),
        (
            "/forms/read/billing-change",
            &[("slug", "acme"), ("plan", "max")],
        ),
        ("/forms/read/billing-cancel", &[("org", "acme")]),
    ];
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (read, args) in reads {
        for (who, client) in [("anonymous", &anonymous), ("outsider", &outsider)] {
            let answer = client
                .post(app.url(read))
                .header(reqwest::header::ACCEPT, "application/json")
                .form(args)
                .send()
                .await
                .expect("POST");
            let status = answer.status();
            assert!(status.is_client_error(), "{read} for {who}: {status}");
            let body = answer.text().await.expect("body");
            for secret in ["Acme", "Pro", "trialing", "owner@acme.test"] {
                assert!(
                    !body.contains(secret),
                    "{read} for {who} told {secret}: {body}"
                );
            }
        }
    }
    // The page Stripe comes back to settles only the caller's own Checkout.
    let signed_out = app
        .get_with(
            &app.another_browser(),
            "/billing/success?session_id=cs_someone",
        )
        .await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert!(location(&signed_out).starts_with("/login?next="));
    let not_one = app.get("/billing/success?session_id=nope").await;
    assert_eq!(not_one.status(), StatusCode::BAD_REQUEST);
    assert!(not_one
        .text()
        .await
        .expect("html")
        .contains("That is not a Checkout Session."));
    assert_eq!(
        app.get("/billing/success?session_id=cs_unknown")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    // The owner gets the data.
    let own = app
        .client
        .post(app.url("/forms/read/billing"))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[("slug", "acme")])
        .send()
        .await
        .expect("POST");
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.expect("body").contains("trialing"));
}

// ---- Webhooks ----

pub(crate) const SECRET: &str = "whsec_portal_test_secret";

pub(crate) fn signed(secret: &str, payload: &str) -> String {
    use hmac::{Hmac, Mac};
    let t = chrono::Utc::now().timestamp();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

pub(crate) async fn post_event(
    app: &TestApp,
    payload: &str,
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .another_browser()
        .post(app.url("/webhooks/stripe"))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(signature) = signature {
        request = request.header("stripe-signature", signature);
    }
    request.send().await.expect("post")
}

#[tokio::test]
async fn bad_or_missing_signatures_get_400_and_store_nothing() {
    let app =
        TestApp::spawn_with(|s| s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")])
            .await;
    let payload = r#"{"id":"evt_forged","object":"event","type":"customer.subscription.deleted","created":1,"data":{"object":{}}}"#;
    assert_eq!(
        post_event(&app, payload, None).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post_event(&app, payload, Some(signed("whsec_wrong", payload)))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let stale = signed(SECRET, payload).replacen("t=", "t=1", 1);
    assert_eq!(
        post_event(&app, payload, Some(stale)).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE id = 'evt_forged'")
            .await,
        0
    );
    // Correctly signed but not an event: refused too.
    assert_eq!(
        post_event(&app, "[1,2]", Some(signed(SECRET, "[1,2]")))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn rotated_secrets_duplicates_and_other_api_versions() {
    let app = TestApp::spawn_with(|s| {
        s.stripe_webhook_secret = vec![
            SECRET.parse().expect("secret"),
            "whsec_previous".parse().expect("secret"),
        ]
    })
    .await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    let sub_id: String = sqlx::query_scalar("SELECT stripe_subscription_id FROM subscriptions")
        .fetch_one(&app.pool)
        .await
        .expect("sub");
    // An event in an old API version's shape, without the price lookup key: read leniently,
    // the subscription fetched from Stripe, and applied.
    let old = serde_json::json!({
        "id": "evt_old_version",
        "object": "event",
        "api_version": "2017-08-15",
        "created": chrono::Utc::now().timestamp(),
        "type": "customer.subscription.updated",
        "data": { "object": { "id": sub_id, "object": "subscription", "status": "trialing", "plan": { "id": "gold" } } },
    })
    .to_string();
    for secret in ["whsec_previous", SECRET] {
        let answer = post_event(&app, &old, Some(signed(secret, &old))).await;
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "accepted with either secret, duplicates included"
        );
    }
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE id = 'evt_old_version'")
            .await,
        1
    );
    app.wait_for(
        "SELECT status FROM webhook_events WHERE id = 'evt_old_version'",
        "applied",
    )
    .await;
    app.wait_for(PLAN, "pro").await;
}

#[tokio::test]
async fn duplicated_out_of_order_deliveries_end_in_the_right_state() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.settled().await;
    let (delivered_before, stored_before) = (
        app.deliveries().await,
        app.count("SELECT count(*) FROM webhook_events").await,
    );
    let chaos = app
        .stripe_call(reqwest::Method::POST, "/_emulator/chaos")
        .form(&[("enabled", "true")])
        .send()
        .await
        .expect("chaos");
    assert_eq!(chaos.status(), StatusCode::OK);
    // The webhook, not the success page, must bring the plan: pay and never visit success.
    let url = app.open_checkout("starter").await;
    assert_eq!(
        app.pay_checkout(&url, "4242 4242 4242 4242").await.status(),
        StatusCode::SEE_OTHER
    );
    app.wait_for(STATUS, "active").await;
    app.wait_for(PLAN, "starter").await;
    // Every event was delivered twice; each was stored, and applied, once.
    app.settled().await;
    let delivered = app.deliveries().await - delivered_before;
    let stored = app.count("SELECT count(*) FROM webhook_events").await - stored_before;
    assert_eq!(delivered, 2 * stored, "chaos delivers each event twice");
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE attempts <> 1")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE status = 'failed'")
            .await,
        0
    );
    app.wait_for("SELECT status FROM invoices LIMIT 1", "paid")
        .await;
}

/// Stores invoice events straight into the inbox in one statement, so one worker claims them
/// together; `events` is `(event id, invoice id, customer, status, created)`.
async fn store_invoice_events(app: &TestApp, events: &[(&str, &str, &str, &str, i64)]) {
    let payloads: Vec<serde_json::Value> = events
        .iter()
        .map(|(id, invoice, customer, status, created)| {
            serde_json::json!({
                "id": id, "object": "event", "type": format!("invoice.{status}"),
                "created": created,
                "data": { "object": {
                    "id": invoice, "object": "invoice", "customer": customer, "status": status,
                    "number": (*status != "draft").then(|| format!("NR-{invoice}")),
                    "currency": "usd", "amount_due": 999, "amount_paid": if *status == "paid" { 999 } else { 0 },
                    "created": created,
                } },
            })
        })
        .collect();
    sqlx::query(
        "INSERT INTO webhook_events (id, type, created, payload)
         SELECT p->>'id', p->>'type', (p->>'created')::bigint, p FROM UNNEST($1::jsonb[]) AS p",
    )
    .bind(payloads)
    .execute(&app.pool)
    .await
    .expect("store events");
}

#[tokio::test]
async fn invoice_events_claimed_together_never_move_an_invoice_back() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.settled().await;
    let customer = app.stripe_customer_of("acme", "cus_batch").await;
    let t = chrono::Utc::now().timestamp();
    // One invoice paid, then a late `invoice.finalized`; another only drafted then finalized;
    // one for a customer the portal does not know.
    store_invoice_events(
        &app,
        &[
            ("evt_b1", "in_b1", &customer, "draft", t),
            ("evt_b2", "in_b1", &customer, "paid", t + 1),
            ("evt_b3", "in_b1", &customer, "open", t + 2),
            ("evt_b4", "in_b2", &customer, "draft", t),
            ("evt_b5", "in_b2", &customer, "open", t + 1),
            ("evt_b6", "in_b3", "cus_stranger", "paid", t),
        ],
    )
    .await;
    app.settled().await;
    let invoices: Vec<(String, String, Option<String>, i64)> = sqlx::query_as(
        "SELECT stripe_invoice_id, status, number, amount_paid FROM invoices
         WHERE stripe_invoice_id ~ '^in_b[0-9]$' ORDER BY stripe_invoice_id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("invoices");
    // (The emulator's own ids are random, such as `in_b3Xq...`: only ours match these patterns.)
    assert_eq!(
        invoices,
        vec![
            ("in_b1".into(), "paid".into(), Some("NR-in_b1".into()), 999),
            ("in_b2".into(), "open".into(), Some("NR-in_b2".into()), 0),
        ]
    );
    let statuses: Vec<(String, String, i32)> = sqlx::query_as(
        "SELECT id, status, attempts FROM webhook_events WHERE id ~ '^evt_b[0-9]$' ORDER BY id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("events");
    let applied = |id: &str| (id.to_owned(), "applied".to_owned(), 1);
    assert_eq!(
        statuses,
        vec![
            applied("evt_b1"),
            applied("evt_b2"),
            applied("evt_b3"),
            applied("evt_b4"),
            applied("evt_b5"),
            ("evt_b6".into(), "ignored".into(), 1),
        ]
    );

    // An unreadable invoice among good ones: the good ones are applied, it is kept for a retry.
    store_invoice_events(&app, &[("evt_c1", "in_c1", &customer, "paid", t)]).await;
    sqlx::query(
        "INSERT INTO webhook_events (id, type, created, payload) VALUES
         ('evt_c0', 'invoice.paid', $1, '{\"id\": \"evt_c0\", \"data\": {\"object\": {\"id\": \"in_c0\", \"object\": \"invoice\"}}}')",
    )
    .bind(t - 1)
    .execute(&app.pool)
    .await
    .expect("unreadable event");
    app.wait_for(
        "SELECT status FROM invoices WHERE stripe_invoice_id = 'in_c1'",
        "paid",
    )
    .await;
    app.wait_for(
        "SELECT coalesce(last_error, '') FROM webhook_events WHERE id = 'evt_c0'",
        "unreadable invoice in invoice.paid",
    )
    .await;
}

#[tokio::test]
async fn two_instances_share_one_inbox_and_apply_each_event_once() {
    let a =
        TestApp::spawn_with(|s| s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")])
            .await;
    let emulator_api = a.stripe_url("");
    let b = TestApp::spawn_on(a.database_url.clone(), |s| {
        s.stripe_secret_key = Some(a.stripe_key().parse().expect("key"));
        s.stripe_api_base = Some(emulator_api.clone());
        s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")];
    })
    .await;
    // Stripe delivers every event to both instances.
    let registered = a
        .stripe_call(reqwest::Method::POST, "/_emulator/webhook_endpoints")
        .form(&[
            ("url", b.url("/webhooks/stripe")),
            ("secret", SECRET.to_owned()),
        ])
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status(), StatusCode::OK);
    a.signed_up_owner().await;
    a.upgrade("pro").await;
    a.settled().await;
    let events = a.count("SELECT count(*) FROM webhook_events").await;
    assert!(events > 5);
    // Each event counted one application, by whichever worker claimed it.
    assert_eq!(
        a.count("SELECT count(*) FROM webhook_events WHERE attempts <> 1")
            .await,
        0
    );
    assert_eq!(b.get("/healthz").await.status(), StatusCode::OK);
    assert!(a.billing_page().await.contains("Pro plan"));
}

// ---- Failed renewals: grace period, recovery, and the end of grace ----

impl TestApp {
    /// Puts `card` on file through Stripe's customer portal, as the customer would.
    pub(crate) async fn change_card(&self, card: &str) {
        // The billing page offers the portal only to a subscriber (or in grace); a card can go
        // on file before that (say, for credit packs).
        let portal = self
            .submit(
                "/orgs/acme/billing",
                "/forms/billing/portal",
                &[("slug", "acme")],
            )
            .await;
        assert_eq!(portal.status(), StatusCode::FOUND);
        let url = location(&portal);
        let changed = self
            .another_browser()
            .post(format!("{url}/card"))
            .form(&[
                ("card_number", card),
                ("card_expiry", "12/34"),
                ("card_cvc", "123"),
            ])
            .send()
            .await
            .expect("change card");
        assert_eq!(
            changed.status(),
            StatusCode::SEE_OTHER,
            "{}",
            changed.text().await.unwrap_or_default()
        );
    }

    /// A paying Starter customer whose card then starts failing, one renewal later.
    pub(crate) async fn past_due_customer(&self) {
        self.signed_up_owner().await;
        self.upgrade("starter").await;
        self.change_card("4000 0000 0000 0341").await;
        self.advance_stripe_clock(32 * 86_400).await;
        self.wait_for(STATUS, "past_due").await;
    }
}

#[tokio::test]
async fn a_failed_renewal_keeps_the_plan_with_a_banner_and_recovers_when_the_card_is_fixed() {
    let app = TestApp::spawn().await;
    app.past_due_customer().await;
    let html = app.billing_page().await;
    assert!(html.contains("Your last payment failed."), "{html}");
    assert!(
        html.contains("You keep your plan for 6 days 23 hours more")
            || html.contains("for 7 days more"),
        "{html}"
    );
    assert!(html.contains("Fix your card") && html.contains("Starter plan"));

    app.change_card("4242 4242 4242 4242").await;
    app.wait_for(STATUS, "active").await;
    let html = app.billing_page().await;
    assert!(!html.contains("Your last payment failed."));
    assert!(
        app.count("SELECT count(*) FROM subscriptions WHERE past_due_since IS NULL")
            .await
            == 1
    );
}

#[tokio::test]
async fn when_grace_runs_out_the_org_moves_to_free_and_stripe_cancels() {
    let app = TestApp::spawn().await;
    app.past_due_customer().await;
    let gateway = app.gateway();
    let catalog = hybrid();
    // Six days on nothing happens; past seven the subscription ends.
    let soon = chrono::Utc::now() + chrono::Duration::days(6);
    let ended = billing_portal::billing::service::end_expired_grace_periods(
        &app.pool, &gateway, &catalog, soon,
    )
    .await
    .expect("grace job");
    assert_eq!(ended, 0);
    let later = chrono::Utc::now() + chrono::Duration::days(8);
    let ended = billing_portal::billing::service::end_expired_grace_periods(
        &app.pool, &gateway, &catalog, later,
    )
    .await
    .expect("grace job");
    assert_eq!(ended, 1);
    assert!(app.billing_page().await.contains("Free plan"));
    let sub_id: String = sqlx::query_scalar("SELECT stripe_subscription_id FROM subscriptions")
        .fetch_one(&app.pool)
        .await
        .expect("sub");
    let in_stripe = gateway
        .retrieve_subscription(&sub_id)
        .await
        .expect("subscription");
    assert_eq!(in_stripe.status, "canceled");
}

#[tokio::test]
async fn a_trial_with_a_card_added_in_the_portal_continues_on_the_plan() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    app.change_card("4242 4242 4242 4242").await;
    app.advance_stripe_clock(8 * 86_400).await;
    app.wait_for(STATUS, "active").await;
    app.wait_for(PLAN, "pro").await;
    app.wait_for(
        "SELECT status FROM invoices WHERE amount_paid > 0 LIMIT 1",
        "paid",
    )
    .await;
    assert!(app.billing_page().await.contains("Pro plan"));
}

// ---- Admin pages ----

#[tokio::test]
async fn admins_search_organizations_read_billing_and_replay_events() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.upgrade("starter").await;
    app.settled().await;
    let admin = app.another_browser();
    app.submit_with(
        &admin,
        "/signup",
        "/forms/signup",
        &[
            ("email", "ops@platform.test"),
            ("password", PASSWORD),
            ("org_name", "Platform"),
        ],
    )
    .await;
    app.cli_ok(&["create-admin", "ops@platform.test"]);

    let all = app
        .get_with(&admin, "/admin")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        all.contains("href=\"/admin/orgs/acme\"") && all.contains("href=\"/admin/orgs/platform\"")
    );
    assert!(all.contains("<td>Starter</td><td>active</td>"), "{all}");
    let by_email = app
        .get_with(&admin, "/admin?q=owner%40acme")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        by_email.contains("href=\"/admin/orgs/acme\"")
            && !by_email.contains("href=\"/admin/orgs/platform\"")
    );
    let nothing = app
        .get_with(&admin, "/admin?q=%25")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        nothing.contains("0 shown"),
        "a typed % is a literal, not a wildcard"
    );

    let org = app
        .get_with(&admin, "/admin/orgs/acme")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        org.contains("<dt>Plan</dt><dd>starter</dd>")
            && org.contains("<dt>Status</dt><dd>active</dd>"),
        "{org}"
    );
    assert!(org.contains("checkout success page") && org.contains("customer.subscription.created"));
    assert!(org.contains("$9.99"));

    let log = app
        .get_with(&admin, "/admin/webhooks?type=invoice.*&status=applied")
        .await
        .text()
        .await
        .expect("html");
    assert!(log.contains("invoice.paid") && !log.contains("customer.subscription.created"));
    assert_eq!(
        app.get_with(&admin, "/admin/webhooks?status=bogus")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let event_id: String =
        sqlx::query_scalar("SELECT id FROM webhook_events WHERE type = 'invoice.paid' LIMIT 1")
            .fetch_one(&app.pool)
            .await
            .expect("event");
    let page = app
        .get_with(&admin, &format!("/admin/webhooks/{event_id}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("&quot;type&quot;: &quot;invoice.paid&quot;")
            || page.contains("\"type\": \"invoice.paid\""),
        "raw payload shown"
    );
    let replayed = app
        .submit_with(
            &admin,
            &format!("/admin/webhooks/{event_id}"),
            "/forms/admin/webhooks/replay",
            &[("reason", "Applying it again after the fix")],
        )
        .await;
    assert_eq!(replayed.status(), StatusCode::FOUND);
    assert_eq!(location(&replayed), format!("/admin/webhooks/{event_id}"));
    assert!(app
        .follow_with(&admin, &replayed)
        .await
        .text()
        .await
        .expect("html")
        .contains("The event is queued to be applied again."));
    app.wait_for(
        &format!("SELECT attempts::text FROM webhook_events WHERE id = '{event_id}'"),
        "2",
    )
    .await;
    app.wait_for(
        &format!("SELECT status FROM webhook_events WHERE id = '{event_id}'"),
        "applied",
    )
    .await;

    // Customers get none of it.
    assert_eq!(
        app.get("/admin/orgs/acme").await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.get("/admin/webhooks").await.status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_event_that_cannot_be_applied_is_retried_alone_and_the_rest_go_through() {
    let app =
        TestApp::spawn_with(|s| s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")])
            .await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    app.settled().await;
    let customer: String = sqlx::query_scalar("SELECT stripe_customer_id FROM billing_customers")
        .fetch_one(&app.pool)
        .await
        .expect("customer");
    let now = chrono::Utc::now().timestamp();
    let bad = serde_json::json!({
        "id": "evt_bad_price", "object": "event", "type": "customer.subscription.updated", "created": now,
        "data": { "object": { "id": "sub_elsewhere", "object": "subscription", "customer": customer, "status": "active",
            "items": { "data": [{ "price": { "lookup_key": "no_such_price" } }] } } },
    })
    .to_string();
    let good = serde_json::json!({
        "id": "evt_good_invoice", "object": "event", "type": "invoice.paid", "created": now,
        "data": { "object": { "id": "in_manual", "object": "invoice", "customer": customer, "status": "paid",
            "currency": "usd", "amount_due": 999, "amount_paid": 999, "created": now } },
    })
    .to_string();
    for payload in [&bad, &good] {
        assert_eq!(
            post_event(&app, payload, Some(signed(SECRET, payload)))
                .await
                .status(),
            StatusCode::OK
        );
    }
    app.wait_for(
        "SELECT status FROM webhook_events WHERE id = 'evt_good_invoice'",
        "applied",
    )
    .await;
    app.wait_for(
        "SELECT attempts::text FROM webhook_events WHERE id = 'evt_bad_price'",
        "1",
    )
    .await;
    let (status, error): (String, Option<String>) =
        sqlx::query_as("SELECT status, last_error FROM webhook_events WHERE id = 'evt_bad_price'")
            .fetch_one(&app.pool)
            .await
            .expect("event");
    assert_eq!(status, "pending", "retried later with backoff");
    assert!(error.is_some_and(|e| e.contains("no_such_price")));
    assert_eq!(
        app.count("SELECT count(*) FROM invoices WHERE stripe_invoice_id = 'in_manual'")
            .await,
        1
    );
    assert!(
        app.billing_page().await.contains("Pro plan"),
        "the bad event changed nothing"
    );
}
