//! The layers every `/api/v1` route goes through: restricted keys (scopes set on the keys page
//! and the CLI, 403 naming the missing scope, last-used shown), `Idempotency-Key` replays (same
//! key and body, other body or path, concurrent repeats, two instances) and rate limits per key
//! and route class (429 with the headers, other keys unaffected, two instances within one limit).

use std::time::Duration;

use billing_portal::api::rate_limit::Limit;
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::harness::{location, TestApp, PASSWORD};

const ACTIONS: &str = "SELECT count(*) FROM usage_actions";

/// A client for the JSON API (no cookies, asks for JSON).
fn api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// Signs up the owner of Acme.
async fn acme(app: &TestApp) {
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
}

async fn page(app: &TestApp, path: &str) -> String {
    app.get(path).await.text().await.expect("html")
}

/// The secret the keys page shows once after creating a key.
fn shown_secret(html: &str) -> String {
    let at = html
        .find(r#"data-testid="new-api-key""#)
        .unwrap_or_else(|| panic!("no new key shown: {html}"));
    let start = at + html[at..].find('>').expect("tag end") + 1;
    let end = start + html[start..].find('<').expect("end of secret");
    html[start..end].to_owned()
}

/// Creates a key on Acme's keys page with the scope boxes in `ticked` (form fields such as
/// `usage_write`) and returns its secret.
async fn key_from_page(app: &TestApp, name: &str, ticked: &[&str]) -> String {
    let mut fields = vec![("name", name)];
    fields.extend(ticked.iter().map(|field| (*field, "on")));
    let created = app
        .submit("/orgs/acme/api-keys", "/forms/api-keys/create", &fields)
        .await;
    assert_eq!(created.status(), StatusCode::FOUND);
    assert_eq!(location(&created), "/orgs/acme/api-keys");
    shown_secret(&page(app, "/orgs/acme/api-keys").await)
}

/// A key with every scope, made as the product's operators would.
async fn full_key(app: &TestApp) -> String {
    let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = 'acme'")
        .fetch_one(&app.pool)
        .await
        .expect("org");
    billing_portal::api::keys::create(&app.pool, org, "Product", None)
        .await
        .expect("key")
}

async fn get(app: &TestApp, path: &str, key: &str) -> Response {
    api_client()
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET")
}

async fn post(
    app: &TestApp,
    path: &str,
    key: &str,
    idempotency: Option<&str>,
    body: Value,
) -> Response {
    let mut request = api_client()
        .post(app.url(path))
        .bearer_auth(key)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(idempotency) = idempotency {
        request = request.header("Idempotency-Key", idempotency);
    }
    request.send().await.expect("POST")
}

fn action(tier: &str, key: &str) -> Value {
    json!({ "tier": tier, "idempotency_key": key })
}

fn header(response: &Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ascii header").to_owned())
}

async fn json_of(response: Response) -> Value {
    response.json().await.expect("JSON answer")
}

async fn assert_missing_scope(response: Response, scope: &str) {
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let body = json_of(response).await;
    assert_eq!(body["error"]["code"], "missing_scope", "{body}");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(message.contains(&format!("`{scope}`")), "{message}");
}

// ---------------------------------------------------------------------------------------------
// Restricted keys

#[tokio::test]
async fn a_usage_only_key_from_the_page_records_usage_but_may_not_read_entitlements() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let key = key_from_page(&app, "Meter", &["usage_write"]).await;
    let listing = page(&app, "/orgs/acme/api-keys").await;
    // The form offers every scope with a label; the list shows what this key holds.
    for scope in [
        "usage:write",
        "entitlements:read",
        "billing:read",
        "billing:write",
    ] {
        assert!(
            listing.contains(&format!("<code>{scope}</code>")),
            "{scope} offered"
        );
    }
    assert!(
        listing.contains(r#"<label for="scope-usage_write">"#),
        "{listing}"
    );
    assert!(listing.contains("<td>usage:write</td>"), "{listing}");
    assert!(
        listing.contains("<td>never</td>"),
        "not used yet: {listing}"
    );

    assert_missing_scope(
        get(&app, "/api/v1/entitlements", &key).await,
        "entitlements:read",
    )
    .await;
    let recorded = post(&app, "/api/v1/usage", &key, None, action("small", "a-1")).await;
    assert_eq!(recorded.status(), StatusCode::OK);
    assert_eq!(json_of(recorded).await["counted_as"], "included");
    assert_eq!(app.count(ACTIONS).await, 1);

    // Last used now shows when it was called.
    let listing = page(&app, "/orgs/acme/api-keys").await;
    assert!(!listing.contains("<td>never</td>"), "{listing}");
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_keys")
            .fetch_one(&app.pool)
            .await
            .expect("row");
    let shown = used
        .expect("marked used")
        .format("%Y-%m-%d %H:%M UTC")
        .to_string();
    assert!(listing.contains(&format!("<td>{shown}</td>")), "{listing}");

    // A refused name keeps the boxes as they were ticked, and creates nothing.
    let refused = app
        .submit(
            "/orgs/acme/api-keys",
            "/forms/api-keys/create",
            &[("name", " "), ("billing_read", "on")],
        )
        .await;
    assert_eq!(location(&refused), "/orgs/acme/api-keys");
    let again = page(&app, "/orgs/acme/api-keys").await;
    assert!(again.contains("Give the key a name"), "{again}");
    let input = |id: &str| {
        let at = again.find(&format!(r#"id="{id}""#)).expect("the box");
        let start = again[..at].rfind("<input").expect("input");
        again[start..at + again[at..].find('>').expect("end")].to_owned()
    };
    assert!(input("scope-billing_read").contains("checked"), "{again}");
    assert!(!input("scope-usage_write").contains("checked"), "{again}");
    assert_eq!(app.count("SELECT count(*) FROM api_keys").await, 1);

    // A key made without ticking any box holds every scope.
    let all = key_from_page(&app, "Everything", &[]).await;
    assert!(page(&app, "/orgs/acme/api-keys")
        .await
        .contains("<td>all scopes</td>"));
    assert_eq!(
        get(&app, "/api/v1/entitlements", &all).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_entitlements_only_key_from_the_cli_reads_entitlements_but_may_not_record_usage() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let printed = app.cli_ok(&[
        "api-key",
        "create",
        "acme",
        "--name",
        "Reader",
        "--scope",
        "entitlements:read",
    ]);
    let key = printed.trim();
    let entitlements = get(&app, "/api/v1/entitlements", key).await;
    assert_eq!(entitlements.status(), StatusCode::OK);
    assert_eq!(json_of(entitlements).await["plan"]["key"], "free");
    assert_missing_scope(
        post(&app, "/api/v1/usage", key, None, action("small", "r-1")).await,
        "usage:write",
    )
    .await;
    assert_missing_scope(
        post(
            &app,
            "/api/v1/usage/batch",
            key,
            None,
            json!({ "actions": [action("small", "r-2")] }),
        )
        .await,
        "usage:write",
    )
    .await;
    assert_eq!(
        app.count(ACTIONS).await,
        0,
        "a refused call records nothing"
    );

    // Several scopes by repeating the flag; without it, all of them; unknown ones refused.
    let two = app.cli_ok(&[
        "api-key",
        "create",
        "acme",
        "--scope",
        "usage:write",
        "--scope",
        "billing:read",
    ]);
    let stored: Vec<Vec<String>> =
        sqlx::query_scalar("SELECT scopes FROM api_keys ORDER BY created_at")
            .fetch_all(&app.pool)
            .await
            .expect("scopes");
    assert_eq!(stored[0], vec!["entitlements:read"]);
    assert_eq!(stored[1], vec!["usage:write", "billing:read"]);
    assert_eq!(
        post(
            &app,
            "/api/v1/usage",
            two.trim(),
            None,
            action("small", "r-3")
        )
        .await
        .status(),
        StatusCode::OK
    );
    let default = app.cli_ok(&["api-key", "create", "acme"]);
    assert_eq!(
        get(&app, "/api/v1/entitlements", default.trim())
            .await
            .status(),
        StatusCode::OK
    );
    let listing = page(&app, "/orgs/acme/api-keys").await;
    assert!(
        listing.contains("<td>usage:write, billing:read</td>"),
        "{listing}"
    );
    assert!(listing.contains("<td>all scopes</td>"), "{listing}");
    let unknown = app.cli(&["api-key", "create", "acme", "--scope", "billing:admin"]);
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        said.contains("unknown scope") && said.contains("usage:write"),
        "{said}"
    );
}

#[tokio::test]
async fn the_demo_key_holds_every_scope() {
    let app = TestApp::spawn_with(|s| s.seed_demo = Some(true)).await;
    let logins =
        std::fs::read_to_string(app.data_dir.path().join("demo-logins.txt")).expect("logins");
    let key = logins
        .lines()
        .find_map(|line| line.strip_prefix("Demo Company API key:"))
        .expect("the demo key is printed")
        .trim()
        .to_owned();
    let scopes: Vec<String> = sqlx::query_scalar("SELECT scopes FROM api_keys")
        .fetch_one(&app.pool)
        .await
        .expect("scopes");
    assert_eq!(
        scopes,
        [
            "usage:write",
            "entitlements:read",
            "billing:read",
            "billing:write"
        ]
    );
    assert_eq!(
        get(&app, "/api/v1/entitlements", &key).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        post(&app, "/api/v1/usage", &key, None, action("small", "d-1"))
            .await
            .status(),
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Idempotency-Key

#[tokio::test]
async fn the_same_idempotency_key_and_body_answer_the_saved_response_and_act_once() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let key = full_key(&app).await;
    let first = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("job-1"),
        action("small", "a"),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let first_type = header(&first, "content-type");
    let first_body = first.bytes().await.expect("body");
    let again = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("job-1"),
        action("small", "a"),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(
        header(&again, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(header(&again, "content-type"), first_type);
    // The saved answer itself, byte for byte: not the usage endpoint's own replay
    // (`"replayed": true`), since the handler did not run again.
    assert_eq!(again.bytes().await.expect("body"), first_body);
    assert_eq!(app.count(ACTIONS).await, 1);

    // The same key with another body, another path or another method is refused.
    let other_body = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("job-1"),
        action("small", "b"),
    )
    .await;
    assert_eq!(other_body.status(), StatusCode::CONFLICT);
    let error = json_of(other_body).await;
    assert_eq!(error["error"]["code"], "idempotency_key_reused", "{error}");
    assert_eq!(error["error"]["field"], "Idempotency-Key");
    let other_path = post(
        &app,
        "/api/v1/usage/batch",
        &key,
        Some("job-1"),
        json!({ "actions": [action("small", "a")] }),
    )
    .await;
    assert_eq!(other_path.status(), StatusCode::CONFLICT);
    assert_eq!(
        app.count(ACTIONS).await,
        1,
        "refused repeats change nothing"
    );

    // A caller's error is final too, and replayed as it was.
    let bad = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("job-2"),
        action("huge", "c"),
    )
    .await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let bad_again = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("job-2"),
        action("huge", "c"),
    )
    .await;
    assert_eq!(bad_again.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        header(&bad_again, "idempotent-replayed").as_deref(),
        Some("true")
    );

    // Keys belong to the organization: another organization's same key is its own.
    let beta_org = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO organizations (id, name, slug) VALUES ($1, 'Beta', 'beta')")
        .bind(beta_org)
        .execute(&app.pool)
        .await
        .expect("beta");
    let beta_key = billing_portal::api::keys::create(&app.pool, beta_org, "Beta", None)
        .await
        .expect("key");
    let theirs = post(
        &app,
        "/api/v1/usage",
        &beta_key,
        Some("job-1"),
        action("small", "b"),
    )
    .await;
    assert_eq!(theirs.status(), StatusCode::OK);
    assert_eq!(header(&theirs, "idempotent-replayed"), None);
    assert_eq!(app.count(ACTIONS).await, 2);
}

#[tokio::test]
async fn bad_idempotency_keys_are_refused_and_expired_ones_are_forgotten() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let key = full_key(&app).await;
    let too_long = "k".repeat(256);
    for bad in ["has space", too_long.as_str(), "caf\u{e9}"] {
        let refused = post(&app, "/api/v1/usage", &key, Some(bad), action("small", "x")).await;
        assert_eq!(
            refused.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{bad:?}"
        );
        let body = json_of(refused).await;
        assert_eq!(body["error"]["code"], "invalid_field");
        assert_eq!(body["error"]["field"], "Idempotency-Key");
    }
    assert_eq!(app.count(ACTIONS).await, 0);
    assert_eq!(
        post(
            &app,
            "/api/v1/usage",
            &key,
            Some(&"k".repeat(255)),
            action("small", "x")
        )
        .await
        .status(),
        StatusCode::OK
    );

    // Kept 24 hours: after that the key is free again, and the job deletes it.
    post(
        &app,
        "/api/v1/usage",
        &key,
        Some("old"),
        action("small", "y"),
    )
    .await;
    sqlx::query("UPDATE api_idempotency_keys SET created_at = now() - interval '25 hours' WHERE key = 'old'")
        .execute(&app.pool)
        .await
        .expect("age");
    let fresh = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("old"),
        action("small", "z"),
    )
    .await;
    assert_eq!(fresh.status(), StatusCode::OK, "an expired key runs again");
    assert_eq!(header(&fresh, "idempotent-replayed"), None);
    sqlx::query("UPDATE api_idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("age");
    let deleted = billing_portal::api::idempotency::store::delete_expired(&app.pool)
        .await
        .expect("delete");
    assert_eq!(deleted, 2);
    assert_eq!(
        app.count("SELECT count(*) FROM api_idempotency_keys").await,
        0
    );
}

#[tokio::test]
async fn a_server_error_is_not_saved_so_the_same_idempotency_key_may_retry() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let key = full_key(&app).await;
    // The database refuses this one action (as a full disk or a broken constraint would).
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_action() RETURNS trigger LANGUAGE plpgsql AS
             $$ BEGIN RAISE EXCEPTION 'refused for the test'; END $$;
         CREATE TRIGGER refuse_action BEFORE INSERT ON usage_actions FOR EACH ROW
             WHEN (NEW.idempotency_key = 'fails') EXECUTE FUNCTION refuse_action();",
    )
    .execute(&app.pool)
    .await
    .expect("trigger");
    let failed = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("retry-me"),
        action("small", "fails"),
    )
    .await;
    assert_eq!(failed.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        app.count("SELECT count(*) FROM api_idempotency_keys").await,
        0,
        "the key is free"
    );
    sqlx::raw_sql("DROP TRIGGER refuse_action ON usage_actions")
        .execute(&app.pool)
        .await
        .expect("drop");
    let retried = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("retry-me"),
        action("small", "fails"),
    )
    .await;
    assert_eq!(retried.status(), StatusCode::OK);
    assert_eq!(header(&retried, "idempotent-replayed"), None, "it ran");
    assert_eq!(app.count(ACTIONS).await, 1);
}

#[tokio::test]
async fn a_request_whose_client_hangs_up_still_finishes_and_its_answer_is_replayed() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let key = full_key(&app).await;
    // Hold the organization's credit row, so the action waits for it.
    let mut blocker = app.pool.begin().await.expect("tx");
    sqlx::query(
        "SELECT 1 FROM credit_accounts c JOIN organizations o ON o.id = c.org_id
         WHERE o.slug = 'acme' FOR UPDATE OF c",
    )
    .fetch_all(&mut *blocker)
    .await
    .expect("lock");
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    let gave_up = impatient
        .post(app.url("/api/v1/usage"))
        .bearer_auth(&key)
        .header("Idempotency-Key", "hang-up")
        .header("content-type", "application/json")
        .body(action("small", "h").to_string())
        .send()
        .await;
    assert!(gave_up.is_err(), "the client timed out");
    blocker.rollback().await.expect("unlock");
    // The request went on without its client and saved its answer.
    let mut saved = 0;
    for _ in 0..100 {
        saved = app
            .count("SELECT count(*) FROM api_idempotency_keys WHERE response_status IS NOT NULL")
            .await;
        if saved == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(saved, 1);
    let retry = post(
        &app,
        "/api/v1/usage",
        &key,
        Some("hang-up"),
        action("small", "h"),
    )
    .await;
    assert_eq!(retry.status(), StatusCode::OK);
    assert_eq!(
        header(&retry, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(app.count(ACTIONS).await, 1);
}

#[tokio::test]
async fn concurrent_requests_with_one_idempotency_key_have_one_effect() {
    let app = TestApp::spawn().await;
    acme(&app).await;
    let key = full_key(&app).await;
    // Each body names its own action, so without the header every request would record one.
    let answers = futures::future::join_all((0..8).map(|i| {
        post(
            &app,
            "/api/v1/usage",
            &key,
            Some("burst"),
            action("small", &format!("c-{i}")),
        )
    }))
    .await;
    let mut ok = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::OK => ok += 1,
            StatusCode::CONFLICT => {
                let retry = header(&answer, "retry-after");
                let code = json_of(answer).await["error"]["code"].clone();
                assert!(
                    code == "idempotency_in_progress" || code == "idempotency_key_reused",
                    "{code}"
                );
                if code == "idempotency_in_progress" {
                    assert_eq!(retry.as_deref(), Some("1"));
                }
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ok, 1, "one request ran");
    assert_eq!(app.count(ACTIONS).await, 1);

    // The same body from many clients at once: one runs, the others get its answer or 409.
    let answers = futures::future::join_all((0..8).map(|_| {
        post(
            &app,
            "/api/v1/usage",
            &key,
            Some("same"),
            action("small", "s"),
        )
    }))
    .await;
    let mut bodies = Vec::new();
    let mut ran = 0;
    for answer in answers {
        match answer.status() {
            StatusCode::OK => {
                if header(&answer, "idempotent-replayed").is_none() {
                    ran += 1;
                }
                bodies.push(answer.bytes().await.expect("body"));
            }
            StatusCode::CONFLICT => {
                assert_eq!(
                    json_of(answer).await["error"]["code"],
                    "idempotency_in_progress"
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(ran, 1);
    assert!(
        bodies.windows(2).all(|w| w[0] == w[1]),
        "every 200 is the one answer"
    );
    assert_eq!(app.count(ACTIONS).await, 2);
}

#[tokio::test]
async fn two_instances_on_one_database_see_the_same_idempotency_keys() {
    let a = TestApp::spawn().await;
    acme(&a).await;
    let b = TestApp::spawn_on(a.database_url.clone(), |_| {}).await;
    let key = full_key(&a).await;
    let first = post(
        &a,
        "/api/v1/usage",
        &key,
        Some("shared"),
        action("small", "one"),
    )
    .await;
    assert_eq!(first.status(), StatusCode::OK);
    let first_body = first.bytes().await.expect("body");
    let replay = post(
        &b,
        "/api/v1/usage",
        &key,
        Some("shared"),
        action("small", "one"),
    )
    .await;
    assert_eq!(replay.status(), StatusCode::OK);
    assert_eq!(
        header(&replay, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(replay.bytes().await.expect("body"), first_body);
    let other = post(
        &b,
        "/api/v1/usage",
        &key,
        Some("shared"),
        action("small", "two"),
    )
    .await;
    assert_eq!(other.status(), StatusCode::CONFLICT);
    assert_eq!(a.count(ACTIONS).await, 1);
}

// ---------------------------------------------------------------------------------------------
// Rate limits

/// The `r=` of a `RateLimit` header.
fn remaining(response: &Response) -> u32 {
    let value = header(response, "ratelimit").expect("RateLimit on every answer");
    value
        .split(';')
        .find_map(|p| p.strip_prefix("r="))
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no r= in {value}"))
}

#[tokio::test]
async fn a_key_over_its_limit_gets_429_with_the_headers_and_another_key_does_not() {
    let app = TestApp::spawn_with(|s| s.api_rate_limit_read = Limit::every(3, 3600)).await;
    acme(&app).await;
    let (key, other) = (full_key(&app).await, full_key(&app).await);
    for left in [2, 1, 0] {
        let answer = get(&app, "/api/v1/entitlements", &key).await;
        assert_eq!(answer.status(), StatusCode::OK);
        assert_eq!(
            header(&answer, "ratelimit-policy").as_deref(),
            Some("\"read\";q=3;w=3600")
        );
        assert_eq!(remaining(&answer), left);
    }
    let refused = get(&app, "/api/v1/entitlements", &key).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = header(&refused, "retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(
        wait > 60 && wait <= 1200,
        "one request comes back every 1200 s: {wait}"
    );
    assert_eq!(
        header(&refused, "ratelimit-policy").as_deref(),
        Some("\"read\";q=3;w=3600")
    );
    assert_eq!(
        header(&refused, "ratelimit").as_deref(),
        Some(format!("\"read\";r=0;t={wait}").as_str())
    );
    let body = json_of(refused).await;
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .expect("message")
        .contains("`read`"));

    // Another key, and the same key's usage class, are unaffected.
    assert_eq!(
        get(&app, "/api/v1/entitlements", &other).await.status(),
        StatusCode::OK
    );
    let usage = post(&app, "/api/v1/usage", &key, None, action("small", "u-1")).await;
    assert_eq!(usage.status(), StatusCode::OK);
    assert_eq!(
        header(&usage, "ratelimit-policy").as_deref(),
        Some("\"usage\";q=25000;w=1")
    );
    // Calls without a key are limited by address, and carry the headers too.
    let public = api_client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET");
    assert_eq!(public.status(), StatusCode::OK);
    assert!(header(&public, "ratelimit").is_some());
}

#[tokio::test]
async fn two_instances_together_never_allow_more_than_the_limit() {
    let limits = |s: &mut billing_portal::config::Settings| {
        s.api_rate_limit_read = Limit::every(6, 3600);
        s.api_rate_limit_billing = Limit::every(1000, 3600);
        s.instance_heartbeat_seconds = 1;
    };
    let a = TestApp::spawn_with(limits).await;
    acme(&a).await;
    let b = TestApp::spawn_on(a.database_url.clone(), limits).await;
    let (key, probe) = (full_key(&a).await, full_key(&a).await);
    // `b` counted two instances as it started; `a` learns of `b` at its next heartbeat, seen in
    // what a billing-class call leaves (half of what is left, with two instances).
    let mut shared = false;
    for _ in 0..100 {
        let answer = post(&a, "/api/v1/no-such-endpoint", &probe, None, json!({})).await;
        assert_eq!(answer.status(), StatusCode::NOT_FOUND);
        if remaining(&answer) < 500 {
            shared = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(shared, "instance a never counted b");
    let answers = futures::future::join_all((0..24).map(|i| {
        let app = if i % 2 == 0 { &a } else { &b };
        get(app, "/api/v1/entitlements", &key)
    }))
    .await;
    let allowed = answers
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(allowed + refused, 24);
    assert!(
        allowed <= 6,
        "{allowed} allowed by two instances with a limit of 6"
    );
    assert!(allowed >= 3, "each instance allows its share: {allowed}");
}

#[tokio::test]
async fn the_openapi_document_names_the_guard_answers_of_every_existing_endpoint() {
    let app = TestApp::spawn().await;
    let doc: Value = api_client()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    for (path, method, statuses) in [
        ("/api/v1/usage", "post", &["403", "409", "422", "429"][..]),
        (
            "/api/v1/usage/batch",
            "post",
            &["403", "409", "422", "429"][..],
        ),
        ("/api/v1/entitlements", "get", &["403", "429"][..]),
    ] {
        let operation = &doc["paths"][path][method];
        for status in statuses {
            assert!(
                operation["responses"][status].is_object(),
                "{method} {path} documents {status}"
            );
        }
        if method == "post" {
            let parameters = operation["parameters"].as_array().expect("parameters");
            assert!(
                parameters
                    .iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header"),
                "{path} documents the Idempotency-Key header"
            );
        }
    }
    // The usage 409 is either an action answer or an error answer; both schemas resolve.
    let schemas = &doc["components"]["schemas"];
    let conflict = &schemas["UsageConflict"]["anyOf"];
    let refs: Vec<&str> = conflict
        .as_array()
        .expect("anyOf")
        .iter()
        .map(|r| r["$ref"].as_str().expect("$ref"))
        .collect();
    assert_eq!(
        refs,
        [
            "#/components/schemas/ActionAnswer",
            "#/components/schemas/ErrorAnswer"
        ]
    );
    for name in ["ActionAnswer", "ErrorAnswer"] {
        assert!(schemas[name].is_object(), "{name} is in the components");
    }
}
