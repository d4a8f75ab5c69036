//! Hardening: one bad item in a group commit fails alone (usage and webhook inbox), input that
//! PostgreSQL cannot store is refused at the edge, links and objects from Stripe are checked
//! before they are stored or shown, and API key guessing is throttled without writes.

use std::net::IpAddr;
use std::sync::Arc;

use billing_portal::billing::inbox_writer::{InboxWriter, NewEvent};
use billing_portal::usage::ledger::{self, Entry, Kind};
use billing_portal::usage::writer::{NewAction, Outcome, Signals, UsageWriter, WriterConfig};
use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::billing::{post_event, signed, SECRET};
use crate::harness::{TestApp, PASSWORD};

impl TestApp {
    /// Signs up `email` with a new organization `name` in a browser of its own; returns its id.
    async fn org_of_own(&self, email: &str, name: &str) -> Uuid {
        let browser = self.another_browser();
        let response = self
            .submit_with(
                &browser,
                "/signup",
                "/forms/signup",
                &[("email", email), ("password", PASSWORD), ("org_name", name)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "signup redirects");
        sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
            .bind(name)
            .fetch_one(&self.pool)
            .await
            .expect("org")
    }

    async fn key_for(&self, org: Uuid) -> String {
        billing_portal::api::keys::create(&self.pool, org, "Product", None)
            .await
            .expect("key")
    }

    async fn grant_to(&self, org_id: Uuid, credits: i64) {
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

    async fn actions_of(&self, org: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM usage_actions WHERE org_id = $1")
            .bind(org)
            .fetch_one(&self.pool)
            .await
            .expect("count")
    }
}

async fn post_json(
    client: &reqwest::Client,
    url: String,
    key: &str,
    body: String,
) -> (StatusCode, Value) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("API call");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

// ---- 1. One bad action fails alone ----

#[tokio::test]
async fn usage_with_nul_is_refused_at_the_edge_and_another_orgs_calls_all_commit() {
    // One writer, so both organizations' actions meet in the same group commits.
    let app = TestApp::spawn_with(|s| s.usage_writers = 1).await;
    let bad_org = app.org_of_own("mallory@bad.test", "Bad Org").await;
    let good_org = app.org_of_own("ada@good.test", "Good Org").await;
    app.grant_to(good_org, 1000).await;
    let bad_key = app.key_for(bad_org).await;
    let good_key = app.key_for(good_org).await;
    let client = app.another_browser();

    let bad_bodies = [
        json!({ "tier": "small", "idempotency_key": "nul\u{0}key" }),
        json!({ "tier": "small", "idempotency_key": "bell\u{7}" }),
        json!({ "tier": "small", "idempotency_key": "k1", "metadata": { "note": "a\u{0}b" } }),
        json!({ "tier": "small", "idempotency_key": "k2", "metadata": { "deep": [{ "x": "\u{0}" }] } }),
        json!({ "tier": "small", "idempotency_key": "k3", "metadata": { "k\u{0}": 1 } }),
    ];
    let mut sent_good = 0;
    for round in 0..3 {
        let mut calls = Vec::new();
        for i in 0..20 {
            let good = json!({ "tier": "small", "idempotency_key": format!("good-{round}-{i}"),
                               "metadata": { "line": "two\nlines" } });
            calls.push(post_json(
                &client,
                app.url("/api/v1/usage"),
                &good_key,
                good.to_string(),
            ));
            sent_good += 1;
            let bad = &bad_bodies[i % bad_bodies.len()];
            calls.push(post_json(
                &client,
                app.url("/api/v1/usage"),
                &bad_key,
                bad.to_string(),
            ));
        }
        let answers = join_all(calls).await;
        for (i, (status, body)) in answers.iter().enumerate() {
            if i % 2 == 0 {
                assert_eq!(*status, StatusCode::OK, "a good call failed: {body}");
            } else {
                assert_eq!(
                    *status,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "a bad call was not refused: {body}"
                );
                assert_eq!(body["error"]["code"], "invalid_field", "{body}");
                let field = body["error"]["field"].as_str().unwrap_or_default();
                assert!(
                    field.starts_with("idempotency_key") || field.starts_with("metadata"),
                    "{body}"
                );
            }
        }
    }
    // A batch with one such action is refused whole, naming it.
    let batch = json!({ "actions": [
        { "tier": "small", "idempotency_key": "b-ok" },
        { "tier": "small", "idempotency_key": "b-bad", "metadata": { "n": "\u{0}" } },
    ] });
    let (status, body) = post_json(
        &client,
        app.url("/api/v1/usage/batch"),
        &bad_key,
        batch.to_string(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["error"]["field"], "actions[1].metadata.n", "{body}");

    assert_eq!(app.actions_of(good_org).await, sent_good);
    assert_eq!(app.actions_of(bad_org).await, 0, "nothing bad was recorded");
}

fn action(org_id: Uuid, key: &str, metadata: Option<Value>) -> NewAction {
    NewAction {
        org_id,
        api_key_id: None,
        tier: "small".to_owned(),
        idempotency_key: key.to_owned(),
        occurred_at: chrono::Utc::now(),
        metadata,
    }
}

#[tokio::test]
async fn the_usage_writer_fails_only_the_request_the_database_refuses() {
    let app = TestApp::spawn().await;
    let bad_org = app.org_of_own("mallory@bad.test", "Bad Org").await;
    let org_b = app.org_of_own("ada@good.test", "Good Org").await;
    let org_c = app.org_of_own("bob@good.test", "Other Org").await;
    let catalog = crate::harness::hybrid_catalog();
    // A writer of its own, called directly: this is what the edge validation now keeps out.
    let (writer, _tasks) = UsageWriter::start(
        app.pool.clone(),
        Arc::new(catalog),
        WriterConfig {
            writers: 1,
            warning_cooldown: chrono::Duration::hours(24),
        },
        Signals::default(),
    );
    let mut calls = Vec::new();
    for i in 0..6 {
        calls.push(writer.record(org_b, vec![action(org_b, &format!("b{i}"), None)]));
        if i == 2 {
            // jsonb refuses NUL; text refuses it too.
            calls.push(writer.record(
                bad_org,
                vec![action(bad_org, "bad", Some(json!({ "note": "a\u{0}b" })))],
            ));
            calls.push(writer.record(bad_org, vec![action(bad_org, "nul\u{0}", None)]));
        }
        calls.push(writer.record(
            org_c,
            vec![
                action(org_c, &format!("c{i}"), None),
                action(org_c, &format!("c{i}-again"), Some(json!({ "ok": true }))),
            ],
        ));
    }
    // All are queued before the writer runs, so they are offered as one group commit.
    let answers = join_all(calls).await;
    let mut failed = 0;
    for answer in &answers {
        match answer {
            Ok(outcomes) => assert!(
                outcomes.iter().all(|o| matches!(o, Outcome::Recorded(_))),
                "{outcomes:?}"
            ),
            Err(_) => failed += 1,
        }
    }
    assert_eq!(failed, 2, "only the two refused requests fail: {answers:?}");
    assert_eq!(app.actions_of(org_b).await, 6);
    assert_eq!(app.actions_of(org_c).await, 12);
    assert_eq!(app.actions_of(bad_org).await, 0);
    let balance: i64 =
        sqlx::query_scalar("SELECT balance_millicredits FROM credit_accounts WHERE org_id = $1")
            .bind(org_c)
            .fetch_one(&app.pool)
            .await
            .expect("balance");
    // Free includes 10 small actions; the other 2 are overage, owed as a negative balance.
    assert_eq!(balance, -2000);
    let counted: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(included + overage), 0)::bigint FROM usage_counters WHERE org_id = $1",
    )
    .bind(org_c)
    .fetch_one(&app.pool)
    .await
    .expect("counters");
    assert_eq!(counted, 12, "the counters moved once per recorded action");
}

// ---- 1. One bad webhook fails alone ----

fn event(id: &str, kind: &str, data: Value) -> String {
    json!({
        "id": id, "object": "event", "type": kind, "api_version": "2026-09-30.endive",
        "created": chrono::Utc::now().timestamp(), "data": { "object": data },
    })
    .to_string()
}

/// 6,000 characters that do not compress (an index entry that large is refused uncompressed).
fn long_id() -> String {
    let mut id = String::from("evt_");
    while id.len() < 6000 {
        id.push_str(&Uuid::new_v4().simple().to_string());
    }
    id.truncate(6000);
    id
}

#[tokio::test]
async fn webhooks_with_nul_or_huge_ids_get_400_and_ordinary_deliveries_all_commit() {
    let app =
        TestApp::spawn_with(|s| s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")])
            .await;
    let bad_payloads = [
        event(
            "evt_nul_data",
            "customer.updated",
            json!({ "id": "cus_1", "object": "customer", "name": "a\u{0}b" }),
        ),
        event(
            &long_id(),
            "customer.updated",
            json!({ "id": "cus_1", "object": "customer" }),
        ),
        event(
            "evt_nul\u{0}id",
            "customer.updated",
            json!({ "id": "cus_1", "object": "customer" }),
        ),
        event(
            "evt_ctl_type",
            "customer.updated\r\n",
            json!({ "id": "cus_1", "object": "customer" }),
        ),
    ];
    let mut good_ids = Vec::new();
    for round in 0..3 {
        let mut calls = Vec::new();
        for i in 0..20 {
            let id = format!("evt_good_{round}_{i}");
            let good = event(
                &id,
                "customer.updated",
                json!({ "id": "cus_1", "object": "customer", "name": "Ada\nLovelace" }),
            );
            good_ids.push(id);
            let bad = bad_payloads[i % bad_payloads.len()].clone();
            calls.push(deliver(&app, good, true));
            calls.push(deliver(&app, bad, false));
        }
        for (good, status) in join_all(calls).await {
            if good {
                assert_eq!(status, StatusCode::OK, "an ordinary delivery failed");
            } else {
                assert_eq!(
                    status,
                    StatusCode::BAD_REQUEST,
                    "a bad event was not refused"
                );
            }
        }
    }
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM webhook_events")
        .fetch_all(&app.pool)
        .await
        .expect("events");
    for id in &good_ids {
        assert!(stored.contains(id), "{id} was not stored");
    }
    // (The built-in emulator delivers events of its own; none of them looks like these.)
    assert!(
        stored.iter().all(|id| id.len() < 255
            && !id.contains('\0')
            && !id.starts_with("evt_nul")
            && id != "evt_ctl_type"),
        "a bad event was stored"
    );
}

async fn deliver(app: &TestApp, payload: String, good: bool) -> (bool, StatusCode) {
    let answer = post_event(app, &payload, Some(signed(SECRET, &payload))).await;
    (good, answer.status())
}

#[tokio::test]
async fn the_inbox_writer_fails_only_the_event_the_database_refuses() {
    let app = TestApp::spawn().await;
    let (writer, _tasks) = InboxWriter::start(app.pool.clone(), 1);
    let new_event = |id: &str, payload: String| NewEvent {
        id: id.to_owned(),
        kind: "customer.updated".to_owned(),
        api_version: None,
        created: chrono::Utc::now().timestamp(),
        payload,
    };
    let mut calls = Vec::new();
    for i in 0..10 {
        let id = format!("evt_direct_{i}");
        let payload = event(&id, "customer.updated", json!({ "object": "customer" }));
        calls.push(writer.store(new_event(&id, payload)));
        if i == 4 {
            // jsonb refuses `\u0000`, and a huge id does not fit the primary key's index.
            let nul = event(
                "evt_direct_nul",
                "customer.updated",
                json!({ "name": "\u{0}" }),
            );
            calls.push(writer.store(new_event("evt_direct_nul", nul)));
            let id = long_id();
            let huge = event(&id, "customer.updated", json!({}));
            calls.push(writer.store(new_event(&id, huge)));
        }
    }
    let answers = join_all(calls).await;
    let failed: Vec<usize> = answers
        .iter()
        .enumerate()
        .filter(|(_, a)| a.is_err())
        .map(|(i, _)| i)
        .collect();
    assert_eq!(
        failed,
        vec![5, 6],
        "only the refused events fail: {answers:?}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE id LIKE 'evt_direct_%'")
            .await,
        10
    );
}

// ---- 6. Links and objects from outside ----

#[tokio::test]
async fn invoice_links_must_be_https_and_an_event_must_carry_the_object_its_type_names() {
    let app =
        TestApp::spawn_with(|s| s.stripe_webhook_secret = vec![SECRET.parse().expect("secret")])
            .await;
    app.signed_up_owner().await;
    app.settled().await;
    let customer = app.stripe_customer_of("acme", "cus_links").await;
    let now = chrono::Utc::now().timestamp();
    let invoice = |id: &str, object: &str, hosted: &str, pdf: &str| {
        json!({ "id": id, "object": object, "customer": customer, "status": "paid",
                "number": format!("NR-{id}"), "currency": "usd", "amount_due": 999, "amount_paid": 999,
                "created": now, "hosted_invoice_url": hosted, "invoice_pdf": pdf })
    };
    let events = [
        event(
            "evt_js_link",
            "invoice.paid",
            invoice(
                "in_js",
                "invoice",
                "javascript:alert(document.cookie)",
                "https://pay.stripe.com/invoice/acct_1/in_js/pdf",
            ),
        ),
        event(
            "evt_http_link",
            "invoice.paid",
            invoice(
                "in_http",
                "invoice",
                "http://invoices.example.com/in_http",
                "data:text/html,<script>alert(1)</script>",
            ),
        ),
        // Other objects under invoice (and other) event types.
        event(
            "evt_charge_as_invoice",
            "invoice.paid",
            invoice("ch_not_an_invoice", "charge", "https://a.example/x", ""),
        ),
        event(
            "evt_invoice_as_subscription",
            "customer.subscription.updated",
            invoice("in_as_sub", "invoice", "", ""),
        ),
        event(
            "evt_invoice_as_charge",
            "charge.refunded",
            invoice("in_as_charge", "invoice", "", ""),
        ),
    ];
    for payload in &events {
        assert_eq!(
            post_event(&app, payload, Some(signed(SECRET, payload)))
                .await
                .status(),
            StatusCode::OK
        );
    }
    app.settled().await;

    let links: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT stripe_invoice_id, hosted_invoice_url, invoice_pdf FROM invoices
         WHERE stripe_invoice_id IN ('in_js', 'in_http', 'ch_not_an_invoice', 'in_as_sub', 'in_as_charge')
         ORDER BY stripe_invoice_id",
    )
    .fetch_all(&app.pool)
    .await
    .expect("invoices");
    assert_eq!(
        links,
        vec![
            ("in_http".into(), None, None),
            (
                "in_js".into(),
                None,
                Some("https://pay.stripe.com/invoice/acct_1/in_js/pdf".into())
            ),
        ],
        "unsafe links are stored as NULL and other objects are not stored as invoices"
    );
    for id in [
        "evt_charge_as_invoice",
        "evt_invoice_as_subscription",
        "evt_invoice_as_charge",
    ] {
        let (status, error): (String, Option<String>) =
            sqlx::query_as("SELECT status, last_error FROM webhook_events WHERE id = $1")
                .bind(id)
                .fetch_one(&app.pool)
                .await
                .expect("event");
        assert_eq!(status, "ignored", "{id}");
        assert!(
            error.as_deref().is_some_and(|e| e.contains("must carry")),
            "{id}: {error:?}"
        );
    }

    // A row stored before links were checked is not rendered as a link either.
    sqlx::query(
        "INSERT INTO invoices (stripe_invoice_id, org_id, number, status, currency, amount_due,
             amount_paid, hosted_invoice_url, invoice_pdf, created)
         SELECT 'in_old', id, 'NR-old', 'paid', 'usd', 500, 500, 'javascript:alert(1)',
                'JaVaScRiPt:alert(2)', now() FROM organizations WHERE slug = 'acme'",
    )
    .execute(&app.pool)
    .await
    .expect("old invoice");
    let page = app.billing_page().await;
    assert!(
        page.contains("NR-in_js") && page.contains("NR-old"),
        "{page}"
    );
    assert!(
        page.contains("https://pay.stripe.com/invoice/acct_1/in_js/pdf"),
        "the https link is kept"
    );
    let lower = page.to_lowercase();
    assert!(!lower.contains("javascript:"), "{page}");
    assert!(!lower.contains("data:text/html"), "{page}");
    assert!(!page.contains("invoices.example.com"), "{page}");
}

// ---- 8. API key guessing ----

/// A client whose connections come from `ip` (any 127.0.0.0/8 address reaches the server).
fn client_from(ip: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(IpAddr::from(ip))
        .build()
        .expect("client")
}

async fn entitlements_with(
    app: &TestApp,
    client: &reqwest::Client,
    key: &str,
) -> reqwest::Response {
    client
        .get(app.url("/api/v1/entitlements"))
        .bearer_auth(key)
        .send()
        .await
        .expect("API call")
}

#[tokio::test]
async fn wrong_api_keys_are_throttled_per_address_and_write_nothing() {
    let app = TestApp::spawn().await; // API_KEY_MISSES_PER_IP: 30 by default
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let org: Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = 'acme'")
        .fetch_one(&app.pool)
        .await
        .expect("org");
    let good = app.key_for(org).await;
    let attacker = client_from([127, 0, 0, 2]);
    let customer = client_from([127, 0, 0, 1]);
    // The attacker's own good key, verified before the flood.
    let attackers_key = app.key_for(org).await;
    assert_eq!(
        entitlements_with(&app, &attacker, &attackers_key)
            .await
            .status(),
        StatusCode::OK
    );
    let snapshot = || async {
        // Every table the key check could touch (and what a miss might plausibly log to).
        sqlx::query_as::<_, (i64, i64, i64, Option<chrono::DateTime<chrono::Utc>>)>(
            "SELECT (SELECT count(*) FROM api_keys), (SELECT count(*) FROM usage_actions),
                    (SELECT count(*) FROM notifications), (SELECT max(last_used_at) FROM api_keys)",
        )
        .fetch_one(&app.pool)
        .await
        .expect("snapshot")
    };
    let before = snapshot().await;

    for i in 0..30 {
        let wrong = format!("bpk_wrong{i:035}"); // shaped like a key: looked up, not found
        let answer = entitlements_with(&app, &attacker, &wrong).await;
        assert_eq!(answer.status(), StatusCode::UNAUTHORIZED, "miss {i}");
    }
    for _ in 0..5 {
        let answer = entitlements_with(&app, &attacker, "bpk_wrong_again").await;
        assert_eq!(answer.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .expect("Retry-After in seconds");
        assert!((1..=60).contains(&retry), "{retry}");
        let body: Value = answer.json().await.expect("json");
        assert_eq!(body["error"]["code"], "too_many_wrong_keys", "{body}");
        assert!(body["error"]["message"].as_str().is_some(), "{body}");
    }
    assert_eq!(snapshot().await, before, "misses wrote nothing");

    // A customer at another address is not hurt, even with a key not verified yet.
    assert_eq!(
        entitlements_with(&app, &customer, &good).await.status(),
        StatusCode::OK
    );
    // A key verified before the flood keeps working from the throttled address.
    assert_eq!(
        entitlements_with(&app, &attacker, &attackers_key)
            .await
            .status(),
        StatusCode::OK
    );
}
