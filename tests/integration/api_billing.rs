//! The billing half of the JSON API end to end: the catalog, the subscription, Checkout with its
//! one-open rule and return addresses, plan changes with preview, cancel and resume, the card
//! portal, paged invoices, the usage summary; keys, typed errors, and every answer checked
//! against the OpenAPI document by real validators (`documented.rs`). Also the usage and
//! entitlements endpoints' answers against the document.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::harness::{location, TestApp, PASSWORD};

const PLAN: &str = "SELECT plan_key FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";
const CANCELING: &str = "SELECT cancel_at_period_end::text FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";

/// A key of the right shape that the portal never issued.
const WRONG_KEY: &str = "bpk_0000000000000000000000000000000000000000";

impl TestApp {
    async fn get_api(&self, path: &str, template: &str, key: Option<&str>) -> (StatusCode, Value) {
        self.documented_call(Method::GET, path, template, key, None)
            .await
    }

    async fn post_api(
        &self,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        self.documented_call(Method::POST, path, path, key, body)
            .await
    }

    async fn checkouts(&self) -> i64 {
        self.count("SELECT count(*) FROM checkout_sessions").await
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn the_plans_need_no_key_and_answer_the_catalog_as_customers_see_it() {
    let app = TestApp::spawn().await;
    let (status, plans) = app.get_api("/api/v1/plans", "/api/v1/plans", None).await;
    assert_eq!(status, StatusCode::OK, "{plans}");
    assert_eq!(plans["currency"], "usd");
    assert_eq!(plans["trial_days"], 7);
    let keys: Vec<&str> = plans["plans"]
        .as_array()
        .expect("plans")
        .iter()
        .filter_map(|p| p["key"].as_str())
        .collect();
    assert_eq!(keys, ["free", "starter", "pro", "max"]);
    let pro = &plans["plans"][2];
    assert_eq!(pro["amount_cents"], 9900);
    assert_eq!(pro["interval"], "month");
    assert_eq!(pro["self_serve"], true);
    assert_eq!(
        pro["limits"][3],
        json!({"meter": "xl", "name": "XL", "included": 160, "unlimited": false})
    );
    assert_eq!(plans["credit_pack"]["credits"], 500);
    assert_eq!(plans["credit_pack"]["amount_cents"], 2000);
    // No lookup key or Stripe id leaks.
    assert!(!plans.to_string().contains("pro_monthly"));
    // A wrong key does not matter to a public list.
    let (status, again) = app
        .get_api("/api/v1/plans", "/api/v1/plans", Some(WRONG_KEY))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again, plans);
}

#[tokio::test]
async fn every_billing_endpoint_refuses_a_missing_or_wrong_key_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let revoked = app.api_key_of("acme").await;
    sqlx::query("UPDATE api_keys SET revoked_at = now()")
        .execute(&app.pool)
        .await
        .expect("revoke");
    let calls: [(Method, &str, Option<Value>); 9] = [
        (Method::GET, "/api/v1/subscription", None),
        (
            Method::POST,
            "/api/v1/checkout_sessions",
            Some(json!({"plan": "pro"})),
        ),
        (
            Method::POST,
            "/api/v1/subscription/change",
            Some(json!({"plan": "pro"})),
        ),
        (Method::POST, "/api/v1/subscription/cancel", None),
        (Method::POST, "/api/v1/subscription/resume", None),
        (Method::POST, "/api/v1/portal_sessions", None),
        (Method::GET, "/api/v1/invoices", None),
        (Method::GET, "/api/v1/usage/summary", None),
        (Method::GET, "/api/v1/entitlements", None),
    ];
    for (method, path, body) in calls {
        for key in [
            None,
            Some(WRONG_KEY),
            Some(revoked.as_str()),
            Some("not-even-a-key"),
        ] {
            let (status, answer) = app
                .documented_call(method.clone(), path, path, key, body.clone())
                .await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {key:?}");
            assert_eq!(code(&answer), "unauthorized", "{answer}");
        }
    }
    assert_eq!(app.checkouts().await, 0);
    assert_eq!(app.count("SELECT count(*) FROM billing_customers").await, 0);
}

#[tokio::test]
async fn the_subscription_reads_free_then_the_trial_then_the_paid_plan() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    let read = || app.get_api("/api/v1/subscription", "/api/v1/subscription", Some(&key));
    let (status, free) = read().await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(free["plan"], json!({"key": "free", "name": "Free"}));
    assert_eq!(
        (free["status"].as_str(), free["live"].as_bool()),
        (Some("free"), Some(false))
    );
    app.start_trial("acme", "pro").await;
    let (_, trial) = read().await;
    assert_eq!(trial["plan"]["key"], "pro");
    assert_eq!(trial["status"], "trialing");
    assert_eq!(trial["live"], true);
    assert!(trial["trial_ends_at"].is_string(), "{trial}");
}

#[tokio::test]
async fn checkout_answers_the_url_keeps_one_open_and_refuses_bad_plans_and_foreign_addresses() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    let checkout = |body: Value| app.post_api("/api/v1/checkout_sessions", Some(&key), Some(body));

    // Refusals first: none of them opens anything.
    for (body, status, want_code, want_field) in [
        (json!({"plan": "platinum"}), 404, "unknown_plan", "plan"),
        (json!({"plan": "free"}), 422, "plan_not_for_sale", "plan"),
        (json!({}), 422, "invalid_field", "plan"),
        (json!({"plan": ""}), 422, "invalid_field", "plan"),
        (json!({"plan": "pro\u{0}"}), 422, "invalid_field", "plan"),
        (
            json!({"plan": "pro", "coupon": "x"}),
            422,
            "invalid_field",
            "coupon",
        ),
        (json!({"plan": 7}), 422, "invalid_field", "plan"),
        (
            json!({"plan": "pro", "success_url": "https://evil.example/"}),
            422,
            "invalid_field",
            "success_url",
        ),
        (
            json!({"plan": "pro", "success_url": "//evil.example/"}),
            422,
            "invalid_field",
            "success_url",
        ),
        (
            json!({"plan": "pro", "cancel_url": "javascript:alert(1)"}),
            422,
            "invalid_field",
            "cancel_url",
        ),
        (
            json!({"plan": "pro", "cancel_url": "/%2F%2Fevil.example"}),
            422,
            "invalid_field",
            "cancel_url",
        ),
    ] {
        let (got, answer) = checkout(body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_eq!(
            (code(&answer), field(&answer)),
            (want_code, want_field),
            "{body}: {answer}"
        );
    }
    let malformed = app
        .another_browser()
        .post(app.url("/api/v1/checkout_sessions"))
        .bearer_auth(&key)
        .body("{\"plan\":")
        .send()
        .await
        .expect("call");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let body: Value = malformed.json().await.expect("json");
    assert_eq!(code(&body), "malformed_json");
    app.assert_documented(
        "POST",
        "/api/v1/checkout_sessions",
        StatusCode::BAD_REQUEST,
        &body,
    )
    .await;
    assert_eq!(app.checkouts().await, 0);

    // A new Checkout is 201 with Stripe's page; asking again for the same plan answers it again.
    let (status, opened) = checkout(json!({"plan": "starter"})).await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let url = opened["url"].as_str().expect("url").to_owned();
    assert!(url.starts_with(&app.stripe_url("/checkout/cs_")), "{url}");
    assert_eq!(
        (opened["plan"].as_str(), opened["reused"].as_bool()),
        (Some("starter"), Some(false))
    );
    let (status, again) = checkout(json!({"plan": "starter"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (again["url"].as_str(), again["reused"].as_bool()),
        (Some(url.as_str()), Some(true))
    );
    // Another plan while it is open: 409, naming where the open one is.
    let (status, other) = checkout(json!({"plan": "pro"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(code(&other), "checkout_open");
    assert!(
        other["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains(&url),
        "{other}"
    );
    assert_eq!(app.checkouts().await, 1);
    // The pages keep the same one open Checkout.
    assert_eq!(app.open_checkout("starter").await, url);
}

#[tokio::test]
async fn a_checkout_from_the_api_settles_on_the_success_page_then_goes_to_its_success_url() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    let (status, opened) = app
        .post_api(
            "/api/v1/checkout_sessions",
            Some(&key),
            Some(json!({
                "plan": "starter",
                "success_url": "/orgs/acme/usage?from=checkout",
                "cancel_url": app.url("/orgs/acme/plans"),
            })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{opened}");
    let url = opened["url"].as_str().expect("url");
    let id = &url[url.rfind('/').expect("id") + 1..];
    let session: Value = app
        .stripe_call(Method::GET, &format!("/v1/checkout/sessions/{id}"))
        .send()
        .await
        .expect("session")
        .json()
        .await
        .expect("json");
    assert_eq!(session["cancel_url"], app.url("/orgs/acme/plans"));
    assert!(
        session["success_url"]
            .as_str()
            .unwrap_or_default()
            .starts_with(&app.url("/billing/success?session_id=")),
        "{session}"
    );
    let paid = app.pay_checkout(url, "4242 4242 4242 4242").await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    // Back on the portal (signed in as the owner): settled at once, then on to success_url.
    let landed = app.get(&location(&paid)[app.base.len()..]).await;
    assert_eq!(location(&landed), "/orgs/acme/usage?from=checkout");
    let plan: String = sqlx::query_scalar(PLAN)
        .fetch_one(&app.pool)
        .await
        .expect("plan");
    assert_eq!(
        plan, "starter",
        "applied by the success page, webhook or not"
    );
    let (_, subscription) = app
        .get_api("/api/v1/subscription", "/api/v1/subscription", Some(&key))
        .await;
    assert_eq!(subscription["plan"]["key"], "starter");
    assert_eq!(subscription["status"], "active");
}

#[tokio::test]
async fn plan_changes_preview_then_upgrade_now_and_downgrade_at_period_end() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    let change = |body: Value| app.post_api("/api/v1/subscription/change", Some(&key), Some(body));

    // No subscription yet: nothing to change, preview or not.
    for body in [
        json!({"plan": "pro"}),
        json!({"plan": "pro", "preview": true}),
    ] {
        let (status, answer) = change(body).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(code(&answer), "no_subscription");
    }
    app.upgrade("starter").await;
    app.wait_for(PLAN, "starter").await;
    for (body, status, want_code) in [
        (json!({"plan": "platinum"}), 404, "unknown_plan"),
        (
            json!({"plan": "free", "preview": true}),
            422,
            "plan_not_for_sale",
        ),
        (json!({"plan": "starter"}), 409, "already_on_plan"),
        (
            json!({"plan": "starter", "preview": true}),
            409,
            "already_on_plan",
        ),
        (
            json!({"plan": "pro", "preview": "yes"}),
            422,
            "invalid_field",
        ),
    ] {
        let (got, answer) = change(body.clone()).await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_eq!(code(&answer), want_code, "{body}");
    }

    // The preview says what an upgrade costs today and changes nothing.
    let (status, preview) = change(json!({"plan": "pro", "preview": true})).await;
    assert_eq!(status, StatusCode::OK, "{preview}");
    assert_eq!(preview["preview"], true);
    assert_eq!(preview["takes_effect"], "now");
    assert_eq!(preview["plan"], json!({"key": "pro", "name": "Pro"}));
    let due = preview["amount_due_cents"].as_i64().expect("an amount");
    assert!(due > 0 && due <= 9900 - 999, "prorated: {due}");
    assert_eq!(preview["currency"], "usd");
    let plan: String = sqlx::query_scalar(PLAN)
        .fetch_one(&app.pool)
        .await
        .expect("plan");
    assert_eq!(plan, "starter", "a preview changes nothing");

    let (status, upgraded) = change(json!({"plan": "pro"})).await;
    assert_eq!(status, StatusCode::OK, "{upgraded}");
    assert_eq!(
        (
            upgraded["preview"].as_bool(),
            upgraded["takes_effect"].as_str()
        ),
        (Some(false), Some("now"))
    );
    app.wait_for(PLAN, "pro").await;

    let (_, preview) = change(json!({"plan": "starter", "preview": true})).await;
    assert_eq!(preview["takes_effect"], "period_end");
    assert!(preview["amount_due_cents"].is_null());
    let (status, downgraded) = change(json!({"plan": "starter"})).await;
    assert_eq!(status, StatusCode::OK, "{downgraded}");
    assert_eq!(downgraded["takes_effect"], "period_end");
    let (_, subscription) = app
        .get_api("/api/v1/subscription", "/api/v1/subscription", Some(&key))
        .await;
    assert_eq!(
        subscription["plan"]["key"], "pro",
        "kept until the period ends"
    );
    assert_eq!(subscription["scheduled_change"]["plan"]["key"], "starter");
    assert_eq!(
        subscription["scheduled_change"]["on"],
        downgraded["effective_at"]
    );
    assert_eq!(
        subscription["current_period_end"],
        downgraded["effective_at"]
    );
}

#[tokio::test]
async fn a_declined_card_is_402_and_keeps_the_plan() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    app.upgrade("starter").await;
    app.wait_for(PLAN, "starter").await;
    app.change_card("4000 0000 0000 0341").await;
    let (status, answer) = app
        .post_api(
            "/api/v1/subscription/change",
            Some(&key),
            Some(json!({"plan": "pro"})),
        )
        .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{answer}");
    assert_eq!(code(&answer), "card_declined");
    app.settled().await;
    let plan: String = sqlx::query_scalar(PLAN)
        .fetch_one(&app.pool)
        .await
        .expect("plan");
    assert_eq!(plan, "starter");
}

#[tokio::test]
async fn cancel_and_resume_flip_the_renewal_and_the_portal_answers_its_url() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    for path in ["/api/v1/subscription/cancel", "/api/v1/subscription/resume"] {
        let (status, answer) = app.post_api(path, Some(&key), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "{path}");
        assert_eq!(code(&answer), "no_subscription");
    }
    app.upgrade("starter").await;
    let (status, canceled) = app
        .post_api("/api/v1/subscription/cancel", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!(canceled["cancel_at_period_end"], true);
    assert_eq!(
        canceled["plan"]["key"], "starter",
        "kept until the period ends"
    );
    app.wait_for(CANCELING, "true").await;
    let (status, resumed) = app
        .post_api("/api/v1/subscription/resume", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{resumed}");
    assert_eq!(resumed["cancel_at_period_end"], false);
    app.wait_for(CANCELING, "false").await;

    let (status, portal) = app
        .post_api("/api/v1/portal_sessions", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{portal}");
    let url = portal["url"].as_str().expect("url");
    assert!(url.starts_with(&app.stripe_url("/")), "{url}");
}

#[tokio::test]
async fn invoices_come_in_pages_with_a_cursor_and_their_links() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key_of("acme").await;
    let (app, key_ref) = (&app, key.as_str());
    let list = |query: &str| {
        let path = format!("/api/v1/invoices{query}");
        async move { app.get_api(&path, "/api/v1/invoices", Some(key_ref)).await }
    };
    let (status, empty) = list("").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(empty, json!({"data": [], "has_more": false}));
    app.upgrade("starter").await;
    app.post_api(
        "/api/v1/subscription/change",
        Some(&key),
        Some(json!({"plan": "pro"})),
    )
    .await;
    app.settled().await;
    let invoices = app.count("SELECT count(*) FROM invoices").await;
    assert!(
        invoices >= 2,
        "the first invoice and the proration: {invoices}"
    );

    let (_, first) = list("?limit=1").await;
    assert_eq!(first["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(first["has_more"], true);
    let newest = &first["data"][0];
    for link in ["hosted_invoice_url", "invoice_pdf_url"] {
        assert!(
            newest[link]
                .as_str()
                .is_some_and(|u| u.starts_with(&app.stripe_url("/"))),
            "{link}: {newest}"
        );
    }
    // Walking the pages visits every invoice once, newest first.
    let mut seen = vec![newest["id"].as_str().expect("id").to_owned()];
    let mut page = first;
    while page["has_more"] == true {
        let after = seen.last().expect("a cursor").clone();
        (_, page) = list(&format!("?limit=1&starting_after={after}")).await;
        seen.extend(
            page["data"]
                .as_array()
                .expect("data")
                .iter()
                .filter_map(|i| i["id"].as_str().map(str::to_owned)),
        );
    }
    assert_eq!(seen.len() as i64, invoices);
    let (_, all) = list("?limit=100").await;
    let ids: Vec<&str> = all["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, seen.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(all["has_more"], false);

    for (query, want) in [
        ("?limit=0", "limit"),
        ("?limit=101", "limit"),
        ("?limit=many", "limit"),
        ("?starting_after=in_nobodys", "starting_after"),
        ("?page=2", "page"),
    ] {
        let (status, refused) = list(query).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert_eq!(
            (code(&refused), field(&refused)),
            ("invalid_field", want),
            "{query}"
        );
    }
    // Another organization's invoice is no cursor here.
    app.sign_up("other@beta.test", PASSWORD, "Beta").await;
    let beta = app.api_key_of("beta").await;
    let (status, refused) = app
        .get_api(
            &format!("/api/v1/invoices?starting_after={}", seen[0]),
            "/api/v1/invoices",
            Some(&beta),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&refused), "starting_after");
}

#[tokio::test]
async fn the_usage_summary_counts_each_meter_per_day_this_period_and_the_last() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let key = app.api_key_of("acme").await;
    for (i, tier) in ["small", "small", "small", "xl"].iter().enumerate() {
        let (status, answer) = app
            .documented_call(
                Method::POST,
                "/api/v1/usage",
                "/api/v1/usage",
                Some(&key),
                Some(json!({"tier": tier, "idempotency_key": format!("summary-{i}")})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
    }
    let (status, summary) = app
        .get_api("/api/v1/usage/summary", "/api/v1/usage/summary", Some(&key))
        .await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let meters = summary["current"]["meters"].as_array().expect("meters");
    let totals: Vec<(&str, u64)> = meters
        .iter()
        .map(|m| {
            (
                m["meter"].as_str().unwrap_or_default(),
                m["total"].as_u64().unwrap_or(99),
            )
        })
        .collect();
    assert_eq!(
        totals,
        [("small", 3), ("medium", 0), ("large", 0), ("xl", 1)]
    );
    let today = chrono::Utc::now().date_naive().to_string();
    let small_days = meters[0]["days"].as_array().expect("days");
    assert_eq!(small_days.last(), Some(&json!({"date": today, "count": 3})));
    let previous: u64 = summary["previous"]["meters"]
        .as_array()
        .expect("meters")
        .iter()
        .filter_map(|m| m["total"].as_u64())
        .sum();
    assert_eq!(previous, 0);
    assert_eq!(summary["previous"]["end"], summary["current"]["start"]);
}

#[tokio::test]
async fn stripe_out_of_reach_is_503_and_changes_nothing() {
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
    let key = app.api_key_of("acme").await;
    for path in ["/api/v1/checkout_sessions", "/api/v1/portal_sessions"] {
        let (status, answer) = app
            .post_api(
                path,
                Some(&key),
                Some(json!({"plan": "pro"})).filter(|_| path.contains("checkout")),
            )
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{path}: {answer}");
        assert_eq!(code(&answer), "stripe_unavailable");
    }
    assert_eq!(app.checkouts().await, 0);
    // Reads do not need Stripe.
    let (status, _) = app
        .get_api("/api/v1/subscription", "/api/v1/subscription", Some(&key))
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_usage_and_entitlements_endpoints_answer_as_documented() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let key = app.api_key_of("acme").await;
    let usage = |body: Value| {
        app.documented_call(
            Method::POST,
            "/api/v1/usage",
            "/api/v1/usage",
            Some(&key),
            Some(body),
        )
    };
    let (status, first) =
        usage(json!({"tier": "small", "idempotency_key": "doc-1", "metadata": {"job": 1}})).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, replayed) = usage(json!({"tier": "small", "idempotency_key": "doc-1"})).await;
    assert_eq!(
        (status, replayed["replayed"].as_bool()),
        (StatusCode::OK, Some(true))
    );
    let (status, _) = usage(json!({"tier": "xl", "idempotency_key": "doc-1"})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, bad) = usage(json!({"tier": "huge", "idempotency_key": "doc-2"})).await;
    assert_eq!(
        (status, field(&bad)),
        (StatusCode::UNPROCESSABLE_ENTITY, "tier")
    );
    // The free plan includes one xl action; with no credits, ten of overage; then 402.
    let mut refused = None;
    for i in 0..20 {
        let (status, answer) =
            usage(json!({"tier": "xl", "idempotency_key": format!("xl-{i}")})).await;
        if status == StatusCode::PAYMENT_REQUIRED {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("refused once the allowance is used");
    assert_eq!(refused["allowed"], false);
    let (status, batch) = app
        .documented_call(
            Method::POST,
            "/api/v1/usage/batch",
            "/api/v1/usage/batch",
            Some(&key),
            Some(json!({"actions": [{"tier": "small", "idempotency_key": "b-1"}, {"tier": "xl", "idempotency_key": "b-2"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let (status, _) = app
        .documented_call(
            Method::POST,
            "/api/v1/usage/batch",
            "/api/v1/usage/batch",
            Some(&key),
            Some(json!({"actions": [{"tier": "nope", "idempotency_key": "b-3"}]})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, entitlements) = app
        .get_api("/api/v1/entitlements", "/api/v1/entitlements", Some(&key))
        .await;
    assert_eq!(status, StatusCode::OK, "{entitlements}");
    let (status, _) = app
        .get_api("/api/v1/entitlements", "/api/v1/entitlements", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_checker_catches_an_undocumented_status_and_an_undocumented_field() {
    let app = TestApp::spawn().await;
    let checker = |status: StatusCode, body: Value| {
        let app = &app;
        async move {
            let outcome = tokio::spawn({
                let base = app.base.clone();
                let data = app.data_dir.path().to_owned();
                async move { check_alone(base, data, status, body).await }
            })
            .await;
            outcome.is_ok()
        }
    };
    // What the endpoint answers passes.
    let (_, plans) = app.get_api("/api/v1/plans", "/api/v1/plans", None).await;
    assert!(checker(StatusCode::OK, plans.clone()).await);
    // A status the document does not list, a field it does not name, a wrong type: refused.
    assert!(
        !checker(
            StatusCode::NOT_FOUND,
            json!({"error": {"code": "x", "message": "y"}})
        )
        .await
    );
    let mut extra = plans.clone();
    extra["surprise"] = json!(1);
    assert!(!checker(StatusCode::OK, extra).await);
    let mut wrong = plans;
    wrong["trial_days"] = json!("seven");
    assert!(!checker(StatusCode::OK, wrong).await);
}

/// Runs the check for `GET /api/v1/plans` on its own task, so a failed assertion shows as a
/// failed task rather than failing the test.
async fn check_alone(base: String, scratch: std::path::PathBuf, status: StatusCode, body: Value) {
    crate::documented::assert_documented_at(&base, &scratch, "GET", "/api/v1/plans", status, &body)
        .await;
}

#[tokio::test]
async fn the_api_reference_page_is_generated_from_the_document_and_needs_no_script() {
    let app = TestApp::spawn().await;
    // Anyone may read it, signed in or not.
    let page = app.get("/docs/api").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    let doc: Value = app
        .get("/api/v1/openapi.json")
        .await
        .json()
        .await
        .expect("the document");
    // Every endpoint and every status of the document is on the page.
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("operations") {
            let title = format!("{} {path}", method.to_uppercase());
            assert!(html.contains(&title), "{title} is on the page");
            let id = op["operationId"].as_str().expect("an operation id");
            assert!(html.contains(&format!("id=\"op-{id}\"")), "{id}");
        }
    }
    assert!(
        html.contains("<h1>Billing portal API reference</h1>"),
        "{html}"
    );
    assert!(html.contains("<code>billing:write</code>"));
    assert!(html.contains("none (public, no API key)"));
    assert!(html.contains("<caption>Request fields (CheckoutRequest)</caption>"));
    assert!(html.contains("<caption>Query parameters</caption>"));
    assert!(html.contains("id=\"schema-InvoiceList\""));
    assert!(html.contains("href=\"#schema-ErrorAnswer\""));
    // The API keys page links to it.
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let keys = app
        .get("/orgs/acme/api-keys")
        .await
        .text()
        .await
        .expect("html");
    assert!(keys.contains("href=\"/docs/api\""), "{keys}");
    let signed_in = app.get("/docs/api").await;
    assert_eq!(signed_in.status(), StatusCode::OK);
}

#[tokio::test]
async fn every_billing_endpoint_refuses_a_key_without_its_scope_and_changes_nothing() {
    use billing_portal::api::scopes::{Scope, Scopes};
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = 'acme'")
        .fetch_one(&app.pool)
        .await
        .expect("org");
    let key_with = |scopes: Scopes| {
        let pool = app.pool.clone();
        async move {
            billing_portal::api::keys::create_with_scopes(&pool, org, "Restricted", None, scopes)
                .await
                .expect("key")
        }
    };
    // Everything but billing:read, and everything but billing:write.
    let no_read = key_with(Scopes::of([
        Scope::UsageWrite,
        Scope::EntitlementsRead,
        Scope::BillingWrite,
    ]))
    .await;
    let no_write = key_with(Scopes::of([
        Scope::UsageWrite,
        Scope::EntitlementsRead,
        Scope::BillingRead,
    ]))
    .await;
    let reads = [
        "/api/v1/subscription",
        "/api/v1/invoices",
        "/api/v1/usage/summary",
    ];
    for path in reads {
        let (status, answer) = app.get_api(path, path, Some(&no_read)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(code(&answer), "missing_scope");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("billing:read"));
        let (status, _) = app.get_api(path, path, Some(&no_write)).await;
        assert_eq!(status, StatusCode::OK, "{path} with billing:read");
    }
    let writes: [(&str, Option<Value>); 5] = [
        ("/api/v1/checkout_sessions", Some(json!({"plan": "pro"}))),
        ("/api/v1/subscription/change", Some(json!({"plan": "pro"}))),
        ("/api/v1/subscription/cancel", None),
        ("/api/v1/subscription/resume", None),
        ("/api/v1/portal_sessions", None),
    ];
    for (path, body) in writes {
        let (status, answer) = app.post_api(path, Some(&no_write), body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {answer}");
        assert_eq!(code(&answer), "missing_scope");
        assert!(answer["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("billing:write"));
    }
    assert_eq!(app.checkouts().await, 0, "no Checkout was opened");
    assert_eq!(app.count("SELECT count(*) FROM billing_customers").await, 0);
    // The plans need no key, so no scope either.
    let (status, _) = app
        .get_api("/api/v1/plans", "/api/v1/plans", Some(&no_read))
        .await;
    assert_eq!(status, StatusCode::OK);
}
