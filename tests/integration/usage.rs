//! Usage metering and credits: the JSON API (keys, actions, batches, entitlements, errors,
//! OpenAPI), the money rules under concurrency, credit packs and refunds through the emulator,
//! auto top-up, rollover, warnings, reconciliation and the pages.

use std::time::{Duration, Instant};

use billing_portal::usage::ledger::{self, Entry, Kind};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{assert_forgery_refused, location, TestApp};

const ORG: &str = "SELECT id FROM organizations WHERE slug = 'acme'";
const BALANCE: &str = "SELECT balance_millicredits FROM credit_accounts c JOIN organizations o ON o.id = c.org_id WHERE o.slug = 'acme'";

/// The new key's secret, shown once on the page that created it.
fn secret_in(html: &str) -> String {
    let at = html
        .find(r#"data-testid="new-api-key""#)
        .unwrap_or_else(|| panic!("the secret is shown: {html}"));
    let start = at + html[at..].find('>').expect("tag end") + 1;
    let end = start + html[start..].find('<').expect("end of secret");
    html[start..end].to_owned()
}

impl TestApp {
    async fn html(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("html")
    }

    /// Buys packs with 4242 and comes back through the success page.
    pub(crate) async fn buy_and_return(&self, packs: &str) {
        let paid = self.buy_packs(packs, "4242 4242 4242 4242").await;
        self.get(&location(&paid)[self.base.len()..]).await;
    }

    /// Turns acme's auto top-up on from its credits page: `packs` packs whenever the balance falls
    /// below `below` credits, at most `monthly_cap` times a month. Answers the form's redirect.
    pub(crate) async fn enable_auto_top_up(
        &self,
        below: &str,
        packs: &str,
        monthly_cap: &str,
    ) -> reqwest::Response {
        self.submit(
            "/orgs/acme/credits",
            "/forms/credits/auto-top-up",
            &[
                ("enabled", "on"),
                ("below", below),
                ("packs", packs),
                ("monthly_cap", monthly_cap),
            ],
        )
        .await
    }

    /// Refunds the (only) purchase in Stripe, all of it or `amount` cents.
    pub(crate) async fn refund(&self, amount: Option<&str>) {
        let intent: String = sqlx::query_scalar("SELECT payment_intent_id FROM credit_purchases")
            .fetch_one(&self.pool)
            .await
            .expect("intent");
        let mut form = vec![("payment_intent", intent.as_str())];
        form.extend(amount.map(|a| ("amount", a)));
        let refund = self
            .another_browser()
            .post(self.stripe_url("/v1/refunds"))
            .bearer_auth(self.stripe_key())
            .form(&form)
            .send()
            .await
            .expect("refund");
        assert_eq!(
            refund.status(),
            StatusCode::OK,
            "{}",
            refund.text().await.unwrap_or_default()
        );
    }

    /// Creates an API key on the organization's page and returns its secret.
    pub(crate) async fn api_key(&self) -> String {
        let created = self
            .submit(
                "/orgs/acme/api-keys",
                "/forms/api-keys/create",
                &[("name", "Product")],
            )
            .await;
        assert_eq!(created.status(), StatusCode::FOUND);
        assert_eq!(location(&created), "/orgs/acme/api-keys");
        let shown = self.html("/orgs/acme/api-keys").await;
        // Shown once: the next visit no longer has it.
        assert!(!self
            .html("/orgs/acme/api-keys")
            .await
            .contains("new-api-key"));
        secret_in(&shown)
    }

    async fn api(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<String>,
    ) -> (StatusCode, Value) {
        let mut request = match method {
            "GET" => self.another_browser().get(self.url(path)),
            _ => self
                .another_browser()
                .post(self.url(path))
                .header("content-type", "application/json"),
        };
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.expect("API call");
        let status = response.status();
        let json = response.json::<Value>().await.unwrap_or(Value::Null);
        (status, json)
    }

    async fn act(&self, key: &str, tier: &str, idempotency_key: &str) -> (StatusCode, Value) {
        let body = json!({ "tier": tier, "idempotency_key": idempotency_key }).to_string();
        self.api("POST", "/api/v1/usage", Some(key), Some(body))
            .await
    }

    pub(crate) async fn entitlements(&self, key: &str) -> Value {
        let (status, body) = self
            .api("GET", "/api/v1/entitlements", Some(key), None)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    async fn org_id(&self) -> uuid::Uuid {
        sqlx::query_scalar(ORG)
            .fetch_one(&self.pool)
            .await
            .expect("org")
    }

    pub(crate) async fn grant(&self, credits: i64) {
        let org_id = self.org_id().await;
        let mut tx = self.pool.begin().await.expect("tx");
        ledger::adjust(
            &mut tx,
            Entry {
                org_id,
                kind: Kind::Grant,
                millicredits: credits * 1000,
                reason: Some("test grant"),
                reference: None,
                actor_id: None,
            },
        )
        .await
        .expect("grant");
        tx.commit().await.expect("commit");
    }

    async fn balance(&self) -> i64 {
        self.count(BALANCE).await
    }

    async fn reconciles(&self) {
        let report = billing_portal::usage::reconcile::run(&self.pool, false)
            .await
            .expect("reconcile");
        assert!(report.clean(), "drift: {report:?}");
    }

    async fn wait_until(&self, what: &str, sql: &str, want: i64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.count(sql).await;
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: wanted {want}, last saw {got}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Buys `packs` credit packs through the credits page and the hosted Checkout with `card`;
    /// returns the success redirect.
    pub(crate) async fn buy_packs(&self, packs: &str, card: &str) -> reqwest::Response {
        let opened = self
            .submit(
                "/orgs/acme/credits",
                "/forms/credits/checkout",
                &[("packs", packs)],
            )
            .await;
        assert_eq!(opened.status(), StatusCode::FOUND);
        let url = location(&opened);
        assert!(url.starts_with(&self.stripe_url("/checkout/cs_")), "{url}");
        self.pay_checkout(&url, card).await
    }
}

#[tokio::test]
async fn api_keys_are_shown_once_and_missing_wrong_or_revoked_keys_get_401() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    assert!(key.starts_with("bpk_"));
    // Stored hashed: the secret itself is nowhere in the database.
    let stored: String = sqlx::query_scalar("SELECT prefix FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .expect("row");
    assert!(key.starts_with(&stored) && stored.len() < key.len());
    let listing = app.html("/orgs/acme/api-keys").await;
    assert!(listing.contains("Product") && !listing.contains(&key));

    let (status, body) = app.api("GET", "/api/v1/entitlements", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let (status, _) = app
        .api("GET", "/api/v1/entitlements", Some("bpk_wrong"), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.entitlements(&key).await["plan"]["key"], "free");

    let key_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .expect("id");
    let revoked = app
        .submit(
            "/orgs/acme/api-keys",
            "/forms/api-keys/revoke",
            &[("id", &key_id.to_string())],
        )
        .await;
    assert_eq!(revoked.status(), StatusCode::FOUND);
    assert_eq!(location(&revoked), "/orgs/acme/api-keys");
    let listing = app.follow(&revoked).await.text().await.expect("html");
    assert!(
        listing.contains("The key was revoked.") && listing.contains("Revoked"),
        "{listing}"
    );
    assert!(
        !listing.contains("Revoke Product"),
        "no button for a revoked key"
    );
    let (status, body) = app
        .api("GET", "/api/v1/entitlements", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("revoked"));

    // Operators can make one from the command line; it works at once.
    let printed = app.cli_ok(&["api-key", "create", "acme", "--name", "Ops"]);
    let cli_key = printed.trim();
    assert!(cli_key.starts_with("bpk_"));
    assert_eq!(app.entitlements(cli_key).await["status"], "free");
    let unknown = app.cli(&["api-key", "create", "nope"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no organization"));
}

#[tokio::test]
async fn actions_are_included_then_paid_from_credits_then_overage_then_refused() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    // Free includes 10 small actions.
    for i in 0..10 {
        let (status, body) = app.act(&key, "small", &format!("s{i}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["counted_as"], "included");
        assert_eq!(body["included_remaining"], 9 - i);
    }
    app.grant(2).await;
    let (_, body) = app.act(&key, "small", "paid-1").await;
    assert_eq!(body["counted_as"], "credits");
    assert_eq!(body["credits_charged"], "1");
    assert_eq!(body["balance"], "1");
    // A medium action costs 2.5 credits: more than the 1 left, so it is overage.
    let (_, body) = app.act(&key, "medium", "m-1").await;
    assert_eq!(
        body["counted_as"], "included",
        "medium has its own included actions"
    );
    app.act(&key, "small", "paid-2").await;
    for i in 0..10 {
        let (status, body) = app.act(&key, "small", &format!("over-{i}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["counted_as"], "overage", "{body}");
    }
    assert_eq!(app.balance().await, -10_000);
    let (status, body) = app.act(&key, "small", "refused").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["allowed"], false);
    assert_eq!(body["error"]["code"], "credits_exhausted");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("Buy credits") && message.contains("overage allowance of 10"),
        "{message}"
    );
    // Refused actions are not recorded.
    assert_eq!(app.count("SELECT count(*) FROM usage_actions").await, 23);

    let e = app.entitlements(&key).await;
    let small = &e["meters"][0];
    assert_eq!(small["key"], "small");
    assert_eq!(
        (small["included"].clone(), small["used"].clone()),
        (json!(10), json!(22))
    );
    assert_eq!(small["may_act"], false);
    assert_eq!(e["meters"][1]["next_counted_as"], "included");
    assert_eq!(e["credits"]["balance_millicredits"], -10_000);
    assert_eq!(e["credits"]["overage_allowance_remaining"], 0);

    // The dashboard shows it: bars with numbers and labels, the negative balance, the banner.
    let html = app.html("/orgs/acme").await;
    assert!(
        html.contains(r#"role="progressbar" aria-label="Small actions used this period""#),
        "{html}"
    );
    assert!(html.contains(r#"aria-valuemax="10" aria-valuenow="10""#));
    assert!(html.contains("10 of 10 included used"));
    assert!(html.contains("+12 beyond the included amount"));
    assert!(html.contains("-10 credits"));
    assert!(html.contains("actions beyond the included ones are refused"));

    // A purchase settles the overage and reopens the buffer.
    app.grant(20).await;
    let (status, body) = app.act(&key, "small", "refused").await;
    assert_eq!(status, StatusCode::OK, "the refused key may be retried");
    assert_eq!(body["counted_as"], "credits");
    assert_eq!(body["balance"], "9");
    app.reconciles().await;
}

#[tokio::test]
async fn the_same_idempotency_key_answers_the_same_and_records_nothing_new() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    let (_, first) = app.act(&key, "large", "job-42").await;
    let (status, again) = app.act(&key, "large", "job-42").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(again["replayed"], true);
    assert_eq!(first["replayed"], false);
    for field in [
        "id",
        "counted_as",
        "included_remaining",
        "balance",
        "occurred_at",
    ] {
        assert_eq!(first[field], again[field], "{field}");
    }
    // Within one batch too.
    let batch = json!({ "actions": [
        { "tier": "large", "idempotency_key": "b-1" },
        { "tier": "large", "idempotency_key": "b-1" },
    ]});
    let (_, body) = app
        .api(
            "POST",
            "/api/v1/usage/batch",
            Some(&key),
            Some(batch.to_string()),
        )
        .await;
    assert_eq!(body["results"][0]["id"], body["results"][1]["id"]);
    assert_eq!(body["results"][1]["replayed"], true);
    assert_eq!(app.count("SELECT count(*) FROM usage_actions").await, 2);
    // The same key for another tier is a mistake, and says so.
    let (status, body) = app.act(&key, "small", "job-42").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(app.count("SELECT count(*) FROM usage_actions").await, 2);
    // Keys are per organization: another organization's identical key is its own action.
    app.log_out().await;
    app.sign_up("other@beta.test", crate::harness::PASSWORD, "Beta")
        .await;
    let created = app
        .submit(
            "/orgs/beta/api-keys",
            "/forms/api-keys/create",
            &[("name", "B")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::FOUND);
    let beta_key = secret_in(&app.html("/orgs/beta/api-keys").await);
    let (_, body) = app.act(&beta_key, "large", "job-42").await;
    assert_eq!(body["replayed"], false);
}

#[tokio::test]
async fn bad_input_gets_a_json_error_naming_the_field_and_records_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let long = "k".repeat(256);
    let cases: Vec<(&str, String, StatusCode, &str)> = vec![
        ("/api/v1/usage", r#"{"tier": "small", "idempotency_key": "x""#.into(), StatusCode::BAD_REQUEST, ""),
        ("/api/v1/usage", "not json".into(), StatusCode::BAD_REQUEST, ""),
        ("/api/v1/usage", json!({"tier": "huge", "idempotency_key": "x"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "tier"),
        ("/api/v1/usage", json!({"tier": "small"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key"),
        ("/api/v1/usage", json!({"tier": "small", "idempotency_key": ""}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key"),
        ("/api/v1/usage", json!({"tier": "small", "idempotency_key": long}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key"),
        ("/api/v1/usage", json!({"tier": "small", "idempotency_key": "x", "occurred_at": future}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "occurred_at"),
        ("/api/v1/usage", json!({"tier": "small", "idempotency_key": "x", "occurred_at": "yesterday"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "occurred_at"),
        ("/api/v1/usage", json!({"tier": "small", "idempotency_key": "x", "metadata": [1]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "metadata"),
        ("/api/v1/usage", json!({"tier": "small", "idempotency_key": "x", "colour": "red"}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "colour"),
        ("/api/v1/usage/batch", json!({"actions": []}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "actions"),
        ("/api/v1/usage/batch", json!({"actions": (0..1001).map(|i| json!({"tier": "small", "idempotency_key": format!("k{i}")})).collect::<Vec<_>>()}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "actions"),
        ("/api/v1/usage/batch", json!({"actions": [{"tier": "small", "idempotency_key": "ok"}, {"tier": "nope", "idempotency_key": "bad"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "actions[1].tier"),
        ("/api/v1/usage/batch", json!({"actions": [{"tier": "small"}]}).to_string(), StatusCode::UNPROCESSABLE_ENTITY, "actions[0].idempotency_key"),
    ];
    for (path, body, want, field) in cases {
        let (status, answer) = app.api("POST", path, Some(&key), Some(body.clone())).await;
        assert_eq!(status, want, "{body} -> {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{answer}"
        );
        if !field.is_empty() {
            assert_eq!(answer["error"]["field"], field, "{body} -> {answer}");
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM usage_actions").await, 0);
    let (status, answer) = app
        .api("GET", "/api/v1/nothing-here", Some(&key), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(answer["error"]["code"], "not_found");
}

#[tokio::test]
async fn a_batch_answers_each_action_on_its_own() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    // Free includes 1 xl; there are no credits, so xl goes to overage (10 allowed), then refused.
    let actions: Vec<Value> = (0..13)
        .map(
            |i| json!({ "tier": "xl", "idempotency_key": format!("x{i}"), "metadata": { "n": i } }),
        )
        .collect();
    let (status, body) = app
        .api(
            "POST",
            "/api/v1/usage/batch",
            Some(&key),
            Some(json!({ "actions": actions }).to_string()),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), 13);
    assert_eq!(results[0]["counted_as"], "included");
    assert!(results[1..11]
        .iter()
        .all(|r| r["counted_as"] == "overage" && r["status"] == 200));
    assert!(results[11..]
        .iter()
        .all(|r| r["status"] == 402 && r["error"]["code"] == "credits_exhausted"));
    assert_eq!(app.balance().await, -150_000);
    let stored: Value =
        sqlx::query_scalar("SELECT metadata FROM usage_actions WHERE idempotency_key = 'x3'")
            .fetch_one(&app.pool)
            .await
            .expect("metadata");
    assert_eq!(stored, json!({ "n": 3 }));
    app.reconciles().await;
}

#[tokio::test]
async fn hundreds_of_parallel_actions_on_one_org_end_with_the_exact_balance() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    app.grant(300).await;
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let client = app.another_browser();
            let url = app.url("/api/v1/usage");
            let key = key.clone();
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(key)
                    .json(&json!({ "tier": "small", "idempotency_key": format!("p{i}") }))
                    .send()
                    .await
                    .expect("post")
                    .status()
            })
        })
        .collect();
    let mut ok = 0;
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            StatusCode::OK => ok += 1,
            StatusCode::PAYMENT_REQUIRED => refused += 1,
            other => panic!("unexpected {other}"),
        }
    }
    // 10 included + 300 from credits + 10 overage; the rest refused. Never overdrawn further.
    assert_eq!((ok, refused), (320, 80));
    assert_eq!(app.balance().await, -10_000);
    assert_eq!(
        app.count("SELECT count(*) FROM usage_actions WHERE counted_as = 'credits'")
            .await,
        300
    );
    assert_eq!(
        app.count("SELECT included + credits + overage FROM usage_counters")
            .await,
        320
    );
    app.reconciles().await;
}

#[tokio::test]
async fn entitlements_answer_for_every_catalog_model() {
    for (file, meter, included, has_credits) in [
        ("plans/seats.toml", "messages", 1000, false),
        ("plans/features.toml", "lookback_days", 5, false),
        ("plans/hybrid.toml", "small", 10, true),
    ] {
        let app = TestApp::spawn_with(|s| s.plans_file = file.into()).await;
        app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
            .await;
        let key = app.api_key().await;
        let e = app.entitlements(&key).await;
        assert_eq!(e["status"], "free", "{file}");
        let m = e["meters"]
            .as_array()
            .expect("meters")
            .iter()
            .find(|m| m["key"] == meter)
            .cloned()
            .expect("meter");
        assert_eq!(m["included"], included, "{file}");
        assert_eq!(m["may_act"], true);
        assert_eq!(e["credits"].is_object(), has_credits, "{file}");
        assert!(e["period"]["start"].is_string() && e["features"].is_array());
        if file.contains("seats") {
            // Without credits the included amount is a hard limit: 1,000 messages, then no more.
            let actions: Vec<Value> = (0..1000)
                .map(|i| json!({ "tier": "messages", "idempotency_key": format!("m{i}") }))
                .collect();
            let batch = json!({ "actions": actions }).to_string();
            let (status, _) = app
                .api("POST", "/api/v1/usage/batch", Some(&key), Some(batch))
                .await;
            assert_eq!(status, StatusCode::OK);
            let (status, body) = app.act(&key, "messages", "m-more").await;
            assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
            assert_eq!(body["error"]["code"], "limit_reached");
            // Agents are a gauge (a count set with PUT /api/v1/gauges/agents), not actions.
            let (status, body) = app.act(&key, "agents", "a1").await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
            assert_eq!(body["error"]["field"], "tier");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_api_as_it_answers() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    let (status, doc) = app.api("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    for path in [
        "/api/v1/usage",
        "/api/v1/usage/batch",
        "/api/v1/entitlements",
        "/api/v1/features/{key}",
        "/api/v1/gauges/{meter}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["api_key"]["scheme"],
        "bearer"
    );
    let schemas = &doc["components"]["schemas"];
    let properties = |name: &str| -> Vec<String> {
        schemas[name]["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{name} has properties"))
            .keys()
            .cloned()
            .collect()
    };
    // Every field the API really answers with is in the document.
    let (_, answer) = app.act(&key, "small", "doc-1").await;
    for field in answer.as_object().expect("object").keys() {
        assert!(
            properties("ActionAnswer").contains(field),
            "ActionAnswer.{field}"
        );
    }
    let e = app.entitlements(&key).await;
    for field in e.as_object().expect("object").keys() {
        assert!(
            properties("Entitlements").contains(field),
            "Entitlements.{field}"
        );
    }
    for field in e["meters"][0].as_object().expect("object").keys() {
        assert!(properties("MeterView").contains(field), "MeterView.{field}");
    }
    assert_eq!(
        doc["paths"]["/api/v1/usage"]["post"]["requestBody"]["content"]["application/json"]
            ["schema"]["$ref"],
        "#/components/schemas/ActionRequest"
    );
    assert!(doc["paths"]["/api/v1/usage"]["post"]["responses"]["402"].is_object());
}

#[tokio::test]
async fn a_credit_pack_arrives_once_and_a_refund_takes_its_share_back() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let refused = app
        .submit(
            "/orgs/acme/credits",
            "/forms/credits/checkout",
            &[("packs", "0")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), "/orgs/acme/credits");
    assert_eq!(app.count("SELECT count(*) FROM credit_purchases").await, 0);
    // Back on the credits page: the message beside the field, with what was typed; once.
    let html = app.follow(&refused).await.text().await.expect("html");
    assert!(html.contains("Choose 1 to 20 packs."), "{html}");
    assert!(html.contains(r#"value="0""#), "{html}");
    assert!(html.contains(r#"aria-invalid="true""#), "{html}");
    let again = app.html("/orgs/acme/credits").await;
    assert!(!again.contains("Choose 1 to 20 packs."), "{again}");

    let paid = app.buy_packs("2", "4242 4242 4242 4242").await;
    let success = location(&paid);
    let landed = app.get(&success[app.base.len()..]).await;
    assert_eq!(location(&landed), "/orgs/acme/credits");
    assert_eq!(app.balance().await, 1_000_000);
    // The webhook arrives too (before or after); the credits still count once.
    app.settled().await;
    app.get(&success[app.base.len()..]).await;
    assert_eq!(app.balance().await, 1_000_000);
    assert_eq!(
        app.count("SELECT count(*) FROM credit_ledger WHERE kind = 'purchase'")
            .await,
        1
    );
    let html = app.html("/orgs/acme/credits").await;
    assert!(
        html.contains("1000 credits") && html.contains("Purchase") && html.contains("+1000"),
        "{html}"
    );

    // A partial refund of $10 of the $40 takes back a quarter.
    app.refund(Some("1000")).await;
    app.wait_until("refund applied", BALANCE, 750_000).await;
    app.settled().await;
    assert_eq!(
        app.balance().await,
        750_000,
        "a duplicate delivery takes nothing more"
    );
    app.reconciles().await;
    let html = app.html("/orgs/acme/credits").await;
    assert!(html.contains("Refund") && html.contains("-250"), "{html}");
}

#[tokio::test]
async fn a_refund_after_the_credits_were_spent_leaves_a_negative_balance() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key().await;
    app.buy_and_return("1").await;
    // Spend 105 credits (after the 1 included xl).
    for i in 0..8 {
        app.act(&key, "xl", &format!("x{i}")).await;
    }
    assert_eq!(app.balance().await, 500_000 - 7 * 15_000);
    app.refund(None).await;
    app.wait_until("refund applied", BALANCE, -105_000).await;
    let html = app.html("/orgs/acme/credits").await;
    assert!(
        html.contains("-105 credits") && html.contains("balance negative"),
        "{html}"
    );
    app.reconciles().await;
}

#[tokio::test]
async fn auto_top_up_charges_the_saved_card_when_the_balance_runs_low() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.buy_and_return("1").await;
    let saved = app.enable_auto_top_up("600", "2", "1").await;
    assert_eq!(saved.status(), StatusCode::FOUND);
    assert_eq!(location(&saved), "/orgs/acme/credits");
    assert!(app
        .follow(&saved)
        .await
        .text()
        .await
        .expect("html")
        .contains("Auto top-up is on."));
    // 500 < 600: one top-up of two packs, charged off-session.
    app.wait_until("top-up", BALANCE, 1_500_000).await;
    assert_eq!(
        app.count("SELECT count(*) FROM credit_ledger WHERE kind = 'top_up'")
            .await,
        1
    );
    // Still below 600 after spending? The monthly cap of one stops a second top-up.
    let key = app.api_key().await;
    let actions: Vec<Value> = (0..70)
        .map(|i| json!({ "tier": "xl", "idempotency_key": format!("x{i}") }))
        .collect();
    app.api(
        "POST",
        "/api/v1/usage/batch",
        Some(&key),
        Some(json!({ "actions": actions }).to_string()),
    )
    .await;
    assert!(app.balance().await < 600_000);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM credit_purchases WHERE source = 'auto_top_up'")
            .await,
        1
    );
    let html = app.html("/orgs/acme/credits").await;
    assert!(
        html.contains("Auto top-up") && html.contains("On: below 600 credits"),
        "{html}"
    );
    app.reconciles().await;
}

#[tokio::test]
async fn auto_top_up_turns_itself_off_after_three_failed_charges_and_tells_the_owners() {
    let app = TestApp::spawn_with(|s| s.top_up_retry_seconds = 0).await;
    app.signed_up_owner().await;
    app.buy_and_return("1").await;
    // The saved card now declines.
    app.change_card("4000 0000 0000 0341").await;
    // Only owners may change it, and bad numbers are refused.
    let bad = app
        .submit(
            "/orgs/acme/credits",
            "/forms/credits/auto-top-up",
            &[
                ("enabled", "on"),
                ("below", "lots"),
                ("packs", "1"),
                ("monthly_cap", "5"),
            ],
        )
        .await;
    assert_eq!(bad.status(), StatusCode::FOUND);
    assert_eq!(location(&bad), "/orgs/acme/credits");
    assert_eq!(
        app.count("SELECT count(*) FROM credit_accounts WHERE auto_top_up")
            .await,
        0
    );
    // The message beside the threshold, and the form as typed (ticked, "lots", cap 5).
    let html = app.follow(&bad).await.text().await.expect("html");
    assert!(
        html.contains(r#"<p id="below-error" class="error">The threshold must be a whole number from 0 to 1000000.</p>"#),
        "{html}"
    );
    assert!(
        html.contains(r#"value="lots""#) && html.contains(r#"value="5""#),
        "{html}"
    );
    assert!(
        html.contains(r#"id="enabled" name="enabled" value="on" checked"#),
        "{html}"
    );
    app.enable_auto_top_up("1000", "1", "5").await;
    app.wait_until(
        "turned off",
        "SELECT count(*) FROM credit_accounts WHERE NOT auto_top_up AND top_up_failures = 3",
        1,
    )
    .await;
    assert_eq!(
        app.count("SELECT count(*) FROM credit_purchases WHERE source = 'auto_top_up' AND status = 'failed'").await,
        3
    );
    assert_eq!(app.balance().await, 500_000, "no credits without a payment");
    let html = app.html("/orgs/acme").await;
    assert!(
        html.contains("Auto top-up was turned off after 3 failed charges"),
        "{html}"
    );
    let credits = app.html("/orgs/acme/credits").await;
    assert!(
        credits.contains("it turned itself off after 3 failed charges"),
        "{credits}"
    );
}

#[tokio::test]
async fn included_actions_restart_at_renewal_and_purchased_credits_carry_over() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let key = app.api_key().await;
    app.upgrade("starter").await;
    app.grant(10).await;
    for i in 0..5 {
        app.act(&key, "xl", &format!("before-{i}")).await;
    }
    let e = app.entitlements(&key).await;
    assert_eq!(e["plan"]["key"], "starter");
    assert_eq!(e["meters"][3]["used"], 5);
    let start = e["period"]["start"].clone();
    app.advance_stripe_clock(32 * 86_400).await;
    app.settled().await;
    // A new period: the counters restart, unused included actions are gone, credits stay.
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let e = app.entitlements(&key).await;
        if e["period"]["start"] != start || Instant::now() > deadline {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_ne!(e["period"]["start"], start, "the period rolled over");
    assert_eq!(e["meters"][3]["used"], 0);
    assert_eq!(e["meters"][3]["remaining"], 15);
    assert_eq!(e["credits"]["balance"], "10");
    let (_, body) = app.act(&key, "xl", "after-1").await;
    assert_eq!(body["counted_as"], "included");
    assert_eq!(body["included_remaining"], 14);
    app.reconciles().await;
}

#[tokio::test]
async fn warnings_are_sent_once_per_cooldown() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    for i in 0..7 {
        app.act(&key, "small", &format!("s{i}")).await;
    }
    assert_eq!(app.count("SELECT count(*) FROM notifications").await, 0);
    app.act(&key, "small", "s7").await;
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'usage_80'")
            .await,
        1
    );
    app.act(&key, "small", "s8").await;
    app.act(&key, "small", "s9").await;
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'usage_100'")
            .await,
        1
    );
    for i in 0..5 {
        app.act(&key, "small", &format!("o{i}")).await;
    }
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'overage'")
            .await,
        1,
        "five overage actions, one message inside the cooldown"
    );
    // Once the cooldown has passed it is sent again.
    sqlx::query("UPDATE usage_warnings SET last_sent_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("age");
    app.act(&key, "small", "o5").await;
    assert_eq!(
        app.count("SELECT count(*) FROM notifications WHERE kind = 'overage'")
            .await,
        2
    );
    let html = app.html("/orgs/acme").await;
    assert!(
        html.contains("You have used 80% of the 10 Small actions"),
        "{html}"
    );
    assert!(html.contains("All 10 included Small actions are used this period."));
}

#[tokio::test]
async fn reconciliation_reports_drift_and_repairs_it() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    app.grant(5).await;
    for i in 0..12 {
        app.act(&key, "small", &format!("s{i}")).await;
    }
    let clean = app.cli_ok(&["reconcile"]);
    assert!(clean.contains("No drift"), "{clean}");
    // Somebody edits the cached numbers by hand.
    sqlx::query("UPDATE credit_accounts SET balance_millicredits = balance_millicredits + 7")
        .execute(&app.pool)
        .await
        .expect("tamper");
    sqlx::query("UPDATE usage_counters SET included = included - 1 WHERE tier = 'small'")
        .execute(&app.pool)
        .await
        .expect("tamper");
    let found = app.cli(&["reconcile"]);
    assert!(!found.status.success());
    let out = String::from_utf8_lossy(&found.stdout);
    assert!(
        out.contains("balance drift  acme: cached 3007 expected 3000"),
        "{out}"
    );
    assert!(
        out.contains("counter drift") && out.contains("small"),
        "{out}"
    );
    let repaired = app.cli_ok(&["reconcile", "--repair"]);
    assert!(repaired.contains("Repaired."), "{repaired}");
    assert_eq!(app.balance().await, 3000);
    app.reconciles().await;
    let (_, e) = app
        .api("GET", "/api/v1/entitlements", Some(&key), None)
        .await;
    assert_eq!(e["meters"][0]["used_included"], 10);
}

#[tokio::test]
async fn admins_grant_and_remove_credits_with_a_reason_the_ledger_shows() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    // Not yet an admin: the page is refused, and so is a post with a good token.
    assert_eq!(
        app.get("/admin/orgs/acme").await.status(),
        StatusCode::FORBIDDEN
    );
    let refused = app
        .submit(
            "/orgs/acme",
            "/forms/admin/credits",
            &[
                ("slug", "acme"),
                ("change", "grant"),
                ("credits", "5"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.balance().await, 0);
    app.cli_ok(&["create-admin", "owner@acme.test"]);
    let granted = app
        .submit(
            "/admin/orgs/acme",
            "/forms/admin/credits",
            &[
                ("change", "grant"),
                ("credits", "12.5"),
                ("reason", "Sorry about the outage"),
            ],
        )
        .await;
    assert_eq!(granted.status(), StatusCode::FOUND);
    assert_eq!(location(&granted), "/admin/orgs/acme");
    assert!(app
        .follow(&granted)
        .await
        .text()
        .await
        .expect("html")
        .contains("Granted 12.5 credits."));
    let removed = app
        .submit(
            "/admin/orgs/acme",
            "/forms/admin/credits",
            &[
                ("change", "remove"),
                ("credits", "2"),
                ("reason", "Correction"),
            ],
        )
        .await;
    assert_eq!(removed.status(), StatusCode::FOUND);
    assert_eq!(app.balance().await, 10_500);
    for (change, credits, reason, field, message) in [
        ("grant", "abc", "r", "credits", "Enter a number of credits"),
        ("grant", "-3", "r", "credits", "Enter a number of credits"),
        (
            "grant",
            "5",
            "",
            "reason",
            "Give a reason of 1 to 200 characters",
        ),
        ("grant", "1.23456", "r", "credits", "at most three decimals"),
        (
            "gift",
            "5",
            "r",
            "change",
            "Choose to grant or to remove credits.",
        ),
    ] {
        let bad = app
            .submit(
                "/admin/orgs/acme",
                "/forms/admin/credits",
                &[("change", change), ("credits", credits), ("reason", reason)],
            )
            .await;
        assert_eq!(bad.status(), StatusCode::FOUND, "{credits} {reason}");
        assert_eq!(location(&bad), "/admin/orgs/acme");
        // The page shows the message beside the field at fault, and what was typed.
        let html = app.follow(&bad).await.text().await.expect("html");
        assert!(
            html.contains(&format!(r#"<p id="{field}-error" class="error">"#)),
            "{field}: {html}"
        );
        assert!(html.contains(message), "{message}: {html}");
        assert!(
            html.contains(&format!(r#"value="{credits}""#)),
            "{credits}: {html}"
        );
    }
    // The bad amount is not shown again on the next visit.
    assert!(!app.html("/admin/orgs/acme").await.contains("1.23456"));
    // An organization that does not exist is a 404, whatever was typed.
    let missing = app
        .submit(
            "/admin/orgs/acme",
            "/forms/admin/credits",
            &[
                ("slug", "nope"),
                ("change", "grant"),
                ("credits", "5"),
                ("reason", "x"),
            ],
        )
        .await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.balance().await, 10_500);
    let html = app.html("/orgs/acme/credits").await;
    assert!(
        html.contains("Sorry about the outage (by owner@acme.test)") && html.contains("+12.5"),
        "{html}"
    );
    assert!(
        html.contains("Correction") && html.contains(">-2<"),
        "{html}"
    );
    let admin = app.html("/admin/orgs/acme").await;
    assert!(admin.contains("Balance: 10.5 credits"), "{admin}");
}

#[tokio::test]
async fn the_usage_history_draws_a_chart_with_a_table_beside_it() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    let yesterday = (chrono::Utc::now() - chrono::Duration::days(1)).to_rfc3339();
    let actions = json!({ "actions": [
        { "tier": "small", "idempotency_key": "a" },
        { "tier": "small", "idempotency_key": "b" },
        { "tier": "large", "idempotency_key": "c", "occurred_at": yesterday },
    ]});
    app.api(
        "POST",
        "/api/v1/usage/batch",
        Some(&key),
        Some(actions.to_string()),
    )
    .await;
    let html = app.html("/orgs/acme/usage").await;
    assert!(
        html.contains("<svg") && html.contains(r#"role="img""#),
        "{html}"
    );
    let today = chrono::Utc::now().format("%-d %b").to_string();
    assert!(html.contains(&format!("{today} Small: 2")), "{html}");
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let row = html
        .split(&format!(r#"<th scope="row">{day}</th>"#))
        .nth(1)
        .expect("a row for today");
    let cells: Vec<&str> = row
        .split("</tr>")
        .next()
        .expect("row")
        .split("<td>")
        .skip(1)
        .map(|c| c.split("</td>").next().expect("cell"))
        .collect();
    assert_eq!(cells, vec!["2", "0", "0", "0"], "{row}");
}

#[tokio::test]
async fn the_credit_service_sells_packs_and_settles_them_without_http() {
    use billing_portal::api::entitlements::EntitlementsCache;
    use billing_portal::billing::catalog::Catalog;
    use billing_portal::orgs::model::Role;
    use billing_portal::orgs::repo::{Membership, Org};
    use billing_portal::stripe_gateway::Gateway;
    use billing_portal::usage::credit_service::{self, CreditError, PackCheckoutOutcome};

    async fn buy(
        app: &TestApp,
        gateway: &Gateway,
        catalog: &Catalog,
        who: &Membership,
        packs: &str,
    ) -> Result<PackCheckoutOutcome, CreditError> {
        credit_service::buy_packs(
            &app.pool,
            gateway,
            catalog,
            &app.base,
            who,
            "owner@acme.test",
            packs,
        )
        .await
    }

    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    let gateway = app.gateway();
    let catalog = crate::harness::hybrid_catalog();
    let org: Org =
        sqlx::query_as("SELECT id, name, slug, created_at FROM organizations WHERE slug = 'acme'")
            .fetch_one(&app.pool)
            .await
            .expect("the organization");
    let org_id = org.id;
    let owner = Membership {
        org,
        role: Role::Owner,
    };

    // Refusals change nothing: a bad count (naming the field), a plain member, no pack for sale.
    match buy(&app, &gateway, &catalog, &owner, "21").await {
        Err(CreditError::Invalid(invalid)) => {
            assert_eq!(invalid.field, "packs");
            assert_eq!(invalid.message, "Choose 1 to 20 packs.");
        }
        other => panic!("a bad count is refused: {other:?}"),
    }
    let member = Membership {
        role: Role::Member,
        ..owner.clone()
    };
    assert!(matches!(
        buy(&app, &gateway, &catalog, &member, "1").await,
        Err(CreditError::NotAllowed)
    ));
    let mut packless = catalog.clone();
    packless.credit_pack = None;
    assert!(matches!(
        buy(&app, &gateway, &packless, &owner, "1").await,
        Err(CreditError::NotForSale)
    ));
    assert_eq!(app.count("SELECT count(*) FROM credit_purchases").await, 0);

    // One open checkout with a pending purchase behind it; a second purchase is sent back to it.
    let Ok(PackCheckoutOutcome::Opened { url }) = buy(&app, &gateway, &catalog, &owner, "2").await
    else {
        panic!("a checkout opens");
    };
    assert!(url.starts_with(&app.stripe_url("/checkout/cs_")), "{url}");
    assert_eq!(
        buy(&app, &gateway, &catalog, &owner, "1")
            .await
            .expect("sent back"),
        PackCheckoutOutcome::AlreadyOpen { url: url.clone() }
    );
    assert_eq!(
        app.count("SELECT count(*) FROM credit_purchases WHERE status = 'pending' AND packs = 2")
            .await,
        1
    );
    assert_eq!(
        app.count("SELECT count(*) FROM checkout_sessions WHERE status = 'open'")
            .await,
        1
    );

    // Paid: settling from the success page credits it once, whether or not the webhook came first.
    let paid = app.pay_checkout(&url, "4242 4242 4242 4242").await;
    let success = location(&paid);
    let session_id = success
        .split("session_id=")
        .nth(1)
        .expect("the session id in the success link")
        .to_owned();
    let cache = EntitlementsCache::new(Default::default(), Duration::from_secs(1));
    credit_service::settle_from_success_page(&app.pool, &cache, &session_id, None, org_id)
        .await
        .expect("settled");
    assert_eq!(app.balance().await, 1_000_000);
    let again =
        credit_service::settle_from_success_page(&app.pool, &cache, &session_id, None, org_id)
            .await
            .expect("settled again");
    assert_eq!(again, 0, "credited once");
    assert_eq!(app.balance().await, 1_000_000);
    assert_eq!(
        app.count("SELECT count(*) FROM checkout_sessions WHERE status = 'open'")
            .await,
        0
    );
    app.reconciles().await;
}

/// Signs up a second person, with an organization of their own, in a browser of their own.
async fn outsider(app: &TestApp) -> reqwest::Client {
    let beta = app.another_browser();
    let signed_up = app
        .submit_with(
            &beta,
            "/signup",
            "/forms/signup",
            &[
                ("email", "other@beta.test"),
                ("password", crate::harness::PASSWORD),
                ("org_name", "Beta"),
            ],
        )
        .await;
    assert_eq!(location(&signed_up), "/orgs/beta");
    beta
}

/// Calls a read function over HTTP as a script would (JSON), with url-encoded arguments.
async fn read(client: &reqwest::Client, app: &TestApp, endpoint: &str) -> (StatusCode, String) {
    let response = client
        .post(app.url(endpoint))
        .header(reqwest::header::ACCEPT, "application/json")
        .form(&[("slug", "acme")])
        .send()
        .await
        .expect("POST");
    let status = response.status();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn the_credit_and_key_forms_refuse_a_missing_or_foreign_token_and_write_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let key = app.api_key().await;
    let key_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .expect("id");
    // A token that is real, but of another session.
    let beta = outsider(&app).await;
    let foreign = crate::harness::authenticity_token(
        &app.get_with(&beta, "/orgs/beta/credits")
            .await
            .text()
            .await
            .expect("html"),
    );
    let key_id = key_id.to_string();
    let forms: [(&str, Vec<(&str, &str)>); 4] = [
        ("/forms/credits/checkout", vec![("packs", "1")]),
        (
            "/forms/credits/auto-top-up",
            vec![("below", "777"), ("packs", "3"), ("monthly_cap", "4")],
        ),
        ("/forms/api-keys/create", vec![("name", "Sneaky")]),
        ("/forms/api-keys/revoke", vec![("id", key_id.as_str())]),
    ];
    for (action, fields) in forms {
        for token in [None, Some(foreign.as_str())] {
            let mut form = vec![("slug", "acme")];
            form.extend(fields.iter().copied());
            form.extend(token.map(|t| ("authenticity_token", t)));
            let what = format!("{action} {token:?}");
            assert_forgery_refused(&app.client, app.url(action), &form, &what).await;
        }
    }
    for (what, sql) in [
        ("purchases", "SELECT count(*) FROM credit_purchases"),
        ("checkouts", "SELECT count(*) FROM checkout_sessions"),
        ("customers", "SELECT count(*) FROM billing_customers"),
        (
            "top-up settings",
            "SELECT count(*) FROM credit_accounts WHERE top_up_below_credits = 777",
        ),
        (
            "new keys",
            "SELECT count(*) FROM api_keys WHERE name = 'Sneaky'",
        ),
        (
            "revoked keys",
            "SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL",
        ),
    ] {
        assert_eq!(app.count(sql).await, 0, "{what}");
    }
    assert_eq!(
        app.entitlements(&key).await["status"],
        "free",
        "the key works"
    );
}

#[tokio::test]
async fn the_usage_credits_and_keys_read_functions_refuse_anonymous_callers_and_outsiders() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    app.api_key().await;
    let beta = outsider(&app).await;
    let anonymous = app.another_browser();
    for endpoint in [
        "/forms/read/usage",
        "/forms/read/credits",
        "/forms/read/api-keys",
    ] {
        let (status, body) = read(&anonymous, &app, endpoint).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{endpoint}: {body}");
        assert!(
            !body.contains("Acme") && !body.contains("Product"),
            "{body}"
        );
        // An outsider learns nothing, not even that the organization exists.
        let (status, body) = read(&beta, &app, endpoint).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{endpoint}: {body}");
        assert!(
            !body.contains("Acme") && !body.contains("Product"),
            "{body}"
        );
        // The owner gets the page's data.
        let (status, body) = read(&app.client, &app, endpoint).await;
        assert_eq!(status, StatusCode::OK, "{endpoint}: {body}");
        assert!(body.contains("Acme"), "{body}");
    }
}

#[tokio::test]
async fn members_see_the_credit_and_key_pages_but_may_not_buy_create_or_revoke() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    app.api_key().await;
    let key_id: uuid::Uuid = sqlx::query_scalar("SELECT id FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .expect("id");
    // The other person joins Acme as a plain member (how is the invitations' business).
    let bob = outsider(&app).await;
    sqlx::query(
        "INSERT INTO memberships (user_id, org_id, role)
         SELECT u.id, o.id, 'member' FROM users u, organizations o
         WHERE u.email = 'other@beta.test' AND o.slug = 'acme'",
    )
    .execute(&app.pool)
    .await
    .expect("membership");

    let credits = app
        .get_with(&bob, "/orgs/acme/credits")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        credits.contains("Only owners change auto top-up."),
        "{credits}"
    );
    assert!(!credits.contains("Buy with Stripe Checkout"), "{credits}");
    let keys = app
        .get_with(&bob, "/orgs/acme/api-keys")
        .await
        .text()
        .await
        .expect("html");
    assert!(
        keys.contains("Product") && !keys.contains("Create key"),
        "{keys}"
    );
    assert!(!keys.contains("Revoke Product"), "{keys}");

    // Posting anyway, with Bob's own good token, is refused.
    let key_id = key_id.to_string();
    for (action, fields) in [
        ("/forms/credits/checkout", vec![("packs", "1")]),
        (
            "/forms/credits/auto-top-up",
            vec![("below", "777"), ("packs", "3"), ("monthly_cap", "4")],
        ),
        ("/forms/api-keys/create", vec![("name", "Bob's")]),
        ("/forms/api-keys/revoke", vec![("id", key_id.as_str())]),
    ] {
        let mut form = vec![("slug", "acme")];
        form.extend(fields);
        let response = app
            .submit_with(&bob, "/orgs/acme/credits", action, &form)
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(app.count("SELECT count(*) FROM credit_purchases").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM credit_accounts WHERE top_up_below_credits = 777")
            .await,
        0
    );
    assert_eq!(
        app.count("SELECT count(*) FROM api_keys WHERE revoked_at IS NULL")
            .await,
        1
    );
}

#[tokio::test]
async fn a_refused_key_name_is_shown_beside_the_field_and_creates_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", crate::harness::PASSWORD, "Acme")
        .await;
    let long = "k".repeat(101);
    for name in ["   ", long.as_str()] {
        let refused = app
            .submit(
                "/orgs/acme/api-keys",
                "/forms/api-keys/create",
                &[("name", name)],
            )
            .await;
        assert_eq!(refused.status(), StatusCode::FOUND);
        assert_eq!(location(&refused), "/orgs/acme/api-keys");
        let html = app.follow(&refused).await.text().await.expect("html");
        assert!(
            html.contains(r#"<p id="name-error" class="error">Give the key a name of 1 to 100 characters.</p>"#),
            "{html}"
        );
        assert!(html.contains(&format!(r#"value="{name}""#)), "{html}");
        assert!(!html.contains("new-api-key"));
    }
    assert_eq!(app.count("SELECT count(*) FROM api_keys").await, 0);
}
