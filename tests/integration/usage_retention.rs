//! Usage history that stays small: actions land in monthly partitions, the upkeep job (given a
//! clock moved forward) makes partitions ahead and drops a month past the retention with its
//! idempotency keys, and the pages, the summary API, entitlements and reconciliation read the
//! same afterwards from the per-day aggregates.

use billing_portal::usage::ledger::{self, Entry, Kind};
use billing_portal::usage::retention::{self, month_start, partition_name};
use chrono::{DateTime, Months, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{TestApp, PASSWORD};

async fn call(app: &TestApp, key: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let request = match &body {
        Some(body) => app
            .another_browser()
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(body.to_string()),
        None => app.another_browser().get(app.url(path)),
    };
    let answer = request.bearer_auth(key).send().await.expect("API call");
    let status = answer.status();
    (status, answer.json().await.unwrap_or(Value::Null))
}

/// The part of a page between two markers (the same page twice differs only outside them:
/// tokens, nonces).
async fn part(app: &TestApp, path: &str, from: &str, to: &str) -> String {
    let html = app.get(path).await.text().await.expect("html");
    let start = html
        .find(from)
        .unwrap_or_else(|| panic!("{path} has {from}: {html}"));
    let end = start
        + html[start..]
            .find(to)
            .unwrap_or_else(|| panic!("{path} has {to} after {from}: {html}"));
    html[start..end].to_owned()
}

/// Everything a customer, the product and an operator see of the organization's usage.
#[derive(Debug, PartialEq)]
struct Seen {
    chart_and_table: String,
    ledger: String,
    dashboard: String,
    summary: Value,
    entitlements: Value,
    balance: i64,
}

async fn seen(app: &TestApp, key: &str) -> Seen {
    let (status, summary) = call(app, key, "/api/v1/usage/summary", None).await;
    assert_eq!(status, StatusCode::OK, "{summary}");
    let (status, entitlements) = call(app, key, "/api/v1/entitlements", None).await;
    assert_eq!(status, StatusCode::OK, "{entitlements}");
    Seen {
        chart_and_table: part(app, "/orgs/acme/usage", "<svg", "</table>").await,
        ledger: part(app, "/orgs/acme/credits", "<table", "</table>").await,
        dashboard: part(app, "/orgs/acme", "<main", "members-heading").await,
        summary,
        entitlements,
        balance: app
            .count("SELECT balance_millicredits FROM credit_accounts")
            .await,
    }
}

async fn reconciles(app: &TestApp) -> billing_portal::usage::reconcile::Report {
    billing_portal::usage::reconcile::run(&app.pool, false)
        .await
        .expect("reconcile")
}

fn months_after(t: DateTime<Utc>, n: u32) -> DateTime<Utc> {
    t.checked_add_months(Months::new(n)).expect("month")
}

async fn partitions(app: &TestApp) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'usage_actions'::regclass ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("partitions")
}

#[tokio::test]
async fn a_month_past_the_retention_is_dropped_and_every_page_and_check_stays_right() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let key = app.api_key_of("acme").await;
    let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organizations")
        .fetch_one(&app.pool)
        .await
        .expect("org");
    let mut tx = app.pool.begin().await.expect("tx");
    ledger::adjust(
        &mut tx,
        Entry {
            org_id: org,
            kind: Kind::Grant,
            millicredits: 100_000,
            reason: Some("test grant"),
            reference: None,
            actor_id: None,
        },
    )
    .await
    .expect("grant");
    tx.commit().await.expect("commit");

    // Free includes 10 small actions: 12 make 10 included and 2 paid with credits; one xl.
    let mut actions: Vec<Value> = (0..12)
        .map(|i| json!({"tier": "small", "idempotency_key": format!("r-{i}")}))
        .collect();
    actions.push(json!({"tier": "xl", "idempotency_key": "r-xl"}));
    let (status, batch) = call(
        &app,
        &key,
        "/api/v1/usage/batch",
        Some(json!({ "actions": actions })),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{batch}");
    let first_id = batch["results"][0]["id"].as_i64().expect("an id");

    // Each action is in its month's partition.
    let (first, last): (DateTime<Utc>, DateTime<Utc>) =
        sqlx::query_as("SELECT min(recorded_at), max(recorded_at) FROM usage_actions")
            .fetch_one(&app.pool)
            .await
            .expect("times");
    let (first, last) = (month_start(first), month_start(last));
    let homes: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT tableoid::regclass::text FROM usage_actions ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .expect("homes");
    assert!(homes.contains(&partition_name(last)), "{homes:?}");
    let before = seen(&app, &key).await;
    assert_eq!(before, seen(&app, &key).await, "the snapshot is stable");
    assert!(before.chart_and_table.contains("Small: 12"), "{before:?}");
    assert_eq!(before.balance, 100_000 - 2 * 1000);
    assert!(reconciles(&app).await.clean());

    // 13 months on, the month is still kept: nothing dropped, partitions made ahead, keys
    // still answer the same.
    let upkeep = retention::upkeep(&app.pool, months_after(last, 13), 13)
        .await
        .expect("upkeep");
    assert!(upkeep.dropped.is_empty(), "{upkeep:?}");
    assert_eq!(upkeep.kept_from, first.min(last));
    let names = partitions(&app).await;
    for ahead in 13..=13 + retention::MONTHS_AHEAD {
        assert!(
            names.contains(&partition_name(months_after(last, ahead))),
            "{ahead} months ahead: {names:?}"
        );
    }
    let (status, replay) = call(
        &app,
        &key,
        "/api/v1/usage",
        Some(json!({"tier": "small", "idempotency_key": "r-0"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replay}");
    assert_eq!(replay["replayed"], true);
    assert_eq!(replay["id"], first_id);

    // 14 months on, the month of the actions is past the retention: dropped with its keys.
    let upkeep = retention::upkeep(&app.pool, months_after(last, 14), 13)
        .await
        .expect("upkeep");
    assert!(upkeep.dropped.contains(&partition_name(last)), "{upkeep:?}");
    assert!(!partitions(&app).await.contains(&partition_name(last)));
    assert_eq!(app.count("SELECT count(*) FROM usage_actions").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM usage_action_keys").await, 0);
    let kept_from: DateTime<Utc> = sqlx::query_scalar("SELECT raw_kept_from FROM usage_retention")
        .fetch_one(&app.pool)
        .await
        .expect("marker");
    assert_eq!(kept_from, months_after(last, 1));
    // A second run finds nothing more to do.
    let again = retention::upkeep(&app.pool, months_after(last, 14), 13)
        .await
        .expect("upkeep");
    assert!(
        again.dropped.is_empty() && again.created.is_empty(),
        "{again:?}"
    );

    // Every page, the summary, entitlements and the balance read the same as before the cut.
    assert_eq!(seen(&app, &key).await, before);
    let report = reconciles(&app).await;
    assert!(report.clean(), "{report:?}");
    // And reconciliation still sees drift after the cut (it does not pass by having nothing
    // to compare).
    sqlx::query("UPDATE credit_accounts SET balance_millicredits = balance_millicredits + 7")
        .execute(&app.pool)
        .await
        .expect("drift");
    sqlx::query("UPDATE usage_counters SET included = included + 1 WHERE tier = 'xl'")
        .execute(&app.pool)
        .await
        .expect("drift");
    let report = reconciles(&app).await;
    assert_eq!(
        (report.balances.len(), report.counters.len()),
        (1, 1),
        "{report:?}"
    );
    let repaired = billing_portal::usage::reconcile::run(&app.pool, true)
        .await
        .expect("repair");
    assert!(repaired.repaired);
    assert!(reconciles(&app).await.clean());
    assert_eq!(seen(&app, &key).await, before);

    // A key older than the retention is forgotten: it records a new action (the writer makes
    // the partition it needs), counted on top of the 12 small actions already used.
    let (status, anew) = call(
        &app,
        &key,
        "/api/v1/usage",
        Some(json!({"tier": "small", "idempotency_key": "r-0"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{anew}");
    assert_eq!(anew["replayed"], false, "{anew}");
    assert_ne!(anew["id"], first_id);
    assert_eq!(anew["counted_as"], "credits", "{anew}");
    assert_eq!(app.count("SELECT count(*) FROM usage_actions").await, 1);
    let after = seen(&app, &key).await;
    assert!(after.chart_and_table.contains("Small: 13"), "{after:?}");
    assert_eq!(after.balance, before.balance - 1000);
    assert!(reconciles(&app).await.clean());
}

#[tokio::test]
async fn the_portal_makes_the_partitions_of_the_coming_months_itself() {
    let app = TestApp::spawn().await;
    let this = month_start(Utc::now());
    let wanted: Vec<String> = (0..=retention::MONTHS_AHEAD)
        .map(|n| partition_name(months_after(this, n)))
        .collect();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let names = partitions(&app).await;
        let ran = app
            .count("SELECT count(*) FROM job_runs WHERE job = 'usage-partitions' AND ok")
            .await;
        if ran >= 1 {
            assert_eq!(names, wanted, "this month and the next ones, nothing else");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the upkeep job did not run; partitions {names:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
