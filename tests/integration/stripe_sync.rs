//! Staying in sync with Stripe: the catch-up from the Events API heals a webhook endpoint that
//! was down (each missed event applied once, a second catch-up adds nothing), the drift check
//! finds a difference made on purpose in Stripe, the admin page shows it and one click repairs
//! it, a drift that heals itself is cleared, and two callers at once run each job once.

use std::time::Duration;

use billing_portal::sync::jobs::{catch_up_once, drift_once};
use reqwest::StatusCode;
use tokio::sync::Notify;

use crate::harness::{location, TestApp, PASSWORD};

const SUB: &str = "SELECT stripe_subscription_id FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";
const STATUS: &str = "SELECT status FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";
const CANCELS: &str = "SELECT cancel_at_period_end::text FROM subscriptions s JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";

impl TestApp {
    /// Turns delivery to the portal's webhook endpoint off or on, as Stripe's dashboard does.
    pub(crate) async fn webhook_delivery(&self, on: bool) {
        let endpoints: serde_json::Value = self
            .stripe_call(reqwest::Method::GET, "/v1/webhook_endpoints")
            .send()
            .await
            .expect("endpoints")
            .json()
            .await
            .expect("json");
        for endpoint in endpoints["data"].as_array().expect("list") {
            let id = endpoint["id"].as_str().expect("id");
            let answer = self
                .stripe_call(
                    reqwest::Method::POST,
                    &format!("/v1/webhook_endpoints/{id}"),
                )
                .form(&[("disabled", if on { "false" } else { "true" })])
                .send()
                .await
                .expect("update endpoint");
            assert_eq!(answer.status(), StatusCode::OK);
        }
    }

    /// Acme's owner on a Pro trial, every webhook applied.
    pub(crate) async fn acme_on_a_trial(&self) -> String {
        self.signed_up_owner().await;
        let started = self.start_trial("acme", "pro").await;
        assert_eq!(started.status(), StatusCode::FOUND);
        self.settled().await;
        let sub: String = sqlx::query_scalar(SUB)
            .fetch_one(&self.pool)
            .await
            .expect("a subscription");
        sub
    }

    /// Changes the subscription in Stripe directly (not through the portal).
    pub(crate) async fn change_in_stripe(&self, sub: &str, form: &[(&str, &str)]) {
        let answer = self
            .stripe_call(reqwest::Method::POST, &format!("/v1/subscriptions/{sub}"))
            .form(form)
            .send()
            .await
            .expect("update");
        assert_eq!(
            answer.status(),
            StatusCode::OK,
            "{}",
            answer.text().await.unwrap_or_default()
        );
    }

    /// A platform admin signed in in a browser of their own.
    pub(crate) async fn platform_admin(&self) -> reqwest::Client {
        let admin = self.another_browser();
        self.submit_with(
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
        self.cli_ok(&["create-admin", "ops@platform.test"]);
        admin
    }

    pub(crate) async fn catch_up(&self) -> billing_portal::sync::catch_up::CatchUp {
        catch_up_once(&self.pool, &self.gateway(), &Notify::new())
            .await
            .expect("catch-up runs")
            .expect("no other instance holds the lease")
    }

    /// Event ids the emulator emitted, as its Events API lists them.
    async fn stripe_event_ids(&self) -> Vec<String> {
        let events = self.gateway().events_since(0).await.expect("events");
        events.into_iter().map(|e| e.id).collect()
    }
}

#[tokio::test]
async fn catch_up_heals_an_endpoint_that_was_down_and_applies_each_event_once() {
    let app = TestApp::spawn().await;
    let sub = app.acme_on_a_trial().await;
    let stored_before = app.count("SELECT count(*) FROM webhook_events").await;

    // The endpoint is down while the customer's subscription changes twice in Stripe.
    app.webhook_delivery(false).await;
    app.change_in_stripe(&sub, &[("cancel_at_period_end", "true")])
        .await;
    let canceled = app
        .stripe_call(reqwest::Method::DELETE, &format!("/v1/subscriptions/{sub}"))
        .send()
        .await
        .expect("cancel");
    assert_eq!(canceled.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events").await,
        stored_before,
        "nothing was delivered"
    );
    assert_eq!(
        sqlx::query_scalar::<_, String>(STATUS)
            .fetch_one(&app.pool)
            .await
            .expect("status"),
        "trialing"
    );

    // (The start-up catch-up ran long before; it may have stored an event or two itself.)
    let caught_before = app
        .count("SELECT count(*) FROM webhook_events WHERE source = 'catch_up'")
        .await;
    let first = app.catch_up().await;
    assert!(first.inserted >= 2, "{first:?}");
    app.wait_for(STATUS, "canceled").await;
    app.settled().await;
    // Every event Stripe lists is in the inbox once, and each missed one was applied once.
    let listed = app.stripe_event_ids().await;
    let held: Vec<String> = sqlx::query_scalar("SELECT id FROM webhook_events")
        .fetch_all(&app.pool)
        .await
        .expect("ids");
    assert!(
        listed.iter().all(|id| held.contains(id)),
        "every event is held"
    );
    assert_eq!(
        (app.count("SELECT count(*) FROM webhook_events WHERE source = 'catch_up'")
            .await
            - caught_before) as usize,
        first.inserted
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM webhook_events WHERE source = 'catch_up'
             AND (status NOT IN ('applied', 'ignored') OR attempts <> 1)"
        )
        .await,
        0,
        "each caught-up event applied exactly once"
    );
    let audit_rows = app.count("SELECT count(*) FROM audit_log").await;

    // A second catch-up finds nothing new and changes nothing.
    let second = app.catch_up().await;
    assert_eq!(second.inserted, 0, "{second:?}");
    assert!(
        second.listed >= 1,
        "it reads again from a little before its cursor"
    );
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM audit_log").await,
        audit_rows
    );
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE attempts > 1")
            .await,
        0
    );

    // The admin webhook page shows the cursor and what was caught up.
    let admin = app.platform_admin().await;
    let page = app
        .get_with(&admin, "/admin/webhooks")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("Catch-up cursor: 20"), "{page}");
    assert!(
        page.contains(&format!(
            "caught up in all: {} events",
            first.inserted as i64 + caught_before
        )),
        "{page}"
    );
}

#[tokio::test]
async fn a_drift_made_with_delivery_off_is_found_shown_and_repaired_with_one_click() {
    let app = TestApp::spawn().await;
    let sub = app.acme_on_a_trial().await;
    app.webhook_delivery(false).await;
    app.change_in_stripe(&sub, &[("cancel_at_period_end", "true")])
        .await;

    let report = drift_once(&app.pool, &app.gateway(), &crate::harness::hybrid_catalog())
        .await
        .expect("drift check")
        .expect("ran");
    assert_eq!(report.open, 1, "{report:?}");
    let (field, ours, stripe, cause): (String, String, String, String) = sqlx::query_as(
        "SELECT field, ours, stripe, cause FROM billing_drifts WHERE resolved_at IS NULL",
    )
    .fetch_one(&app.pool)
    .await
    .expect("drift");
    assert_eq!(
        (field.as_str(), ours.as_str(), stripe.as_str()),
        ("cancel_at_period_end", "false", "true")
    );
    assert!(cause.contains("has not arrived"), "{cause}");

    let admin = app.platform_admin().await;
    let page = app
        .get_with(&admin, "/admin/drift")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("1 open"), "{page}");
    assert!(
        page.contains("<td>cancel_at_period_end</td>") && page.contains(&sub),
        "{page}"
    );

    // One click: refetch and re-apply.
    let repaired = app
        .submit_with(&admin, "/admin/drift", "/forms/admin/repair/resync", &[])
        .await;
    assert_eq!(repaired.status(), StatusCode::FOUND);
    assert_eq!(location(&repaired), "/admin/drift");
    app.wait_for(CANCELS, "true").await;
    assert_eq!(
        app.count(
            "SELECT count(*) FROM billing_drifts WHERE resolution = 'repaired' AND resolved_at IS NOT NULL"
        )
        .await,
        1
    );
    let after = app
        .follow_with(&admin, &repaired)
        .await
        .text()
        .await
        .expect("html");
    assert!(
        after.contains("0 open") && after.contains("no drift left"),
        "{after}"
    );
    // The repair is in the audit log with the admin, the reason and the values before and after.
    let (kind, reason, before, after): (String, Option<String>, String, String) = sqlx::query_as(
        "SELECT actor_kind, reason, before->>'cancel_at_period_end', after->>'cancel_at_period_end'
         FROM audit_log WHERE action = 'admin.resync' AND entity = 'subscriptions'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("audit row");
    assert_eq!(kind, "user");
    assert!(reason.is_some_and(|r| r.contains("One-click repair")));
    assert_eq!((before.as_str(), after.as_str()), ("false", "true"));
}

#[tokio::test]
async fn a_drift_that_heals_itself_is_cleared() {
    let app = TestApp::spawn().await;
    let sub = app.acme_on_a_trial().await;
    app.webhook_delivery(false).await;
    app.change_in_stripe(&sub, &[("cancel_at_period_end", "true")])
        .await;
    let catalog = crate::harness::hybrid_catalog();
    let found = drift_once(&app.pool, &app.gateway(), &catalog)
        .await
        .expect("check")
        .expect("ran");
    assert_eq!(found.open, 1);
    // The late event arrives (here through the catch-up) and is applied.
    app.catch_up().await;
    app.wait_for(CANCELS, "true").await;
    let again = drift_once(&app.pool, &app.gateway(), &catalog)
        .await
        .expect("check")
        .expect("ran");
    assert_eq!((again.open, again.closed), (0, 1), "{again:?}");
    assert_eq!(
        app.count("SELECT count(*) FROM billing_drifts WHERE resolution = 'healed'")
            .await,
        1
    );
}

#[tokio::test]
async fn two_callers_at_once_run_each_job_once() {
    let app = TestApp::spawn().await;
    // The instance's own catch-up at start-up has run, so only the callers below catch up (on a
    // busy machine it could otherwise start late and take their events).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM job_runs WHERE job = $1 AND finished_at IS NOT NULL",
        )
        .bind(billing_portal::sync::jobs::CATCH_UP_JOB)
        .fetch_one(&app.pool)
        .await
        .expect("job runs");
        if done >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no catch-up at start-up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sub = app.acme_on_a_trial().await;
    app.webhook_delivery(false).await;
    app.change_in_stripe(&sub, &[("cancel_at_period_end", "true")])
        .await;
    let (gateway, catalog) = (app.gateway(), crate::harness::hybrid_catalog());
    let (wake_a, wake_b) = (Notify::new(), Notify::new());

    // While another instance holds the catch-up's lease, a caller skips its turn.
    let mut other = sqlx::PgConnection::connect(&app.database_url)
        .await
        .expect("connection");
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 7))")
        .bind(billing_portal::sync::jobs::CATCH_UP_JOB)
        .fetch_one(&mut other)
        .await
        .expect("lock");
    assert!(held);
    let caught_before = app
        .count("SELECT count(*) FROM webhook_events WHERE source = 'catch_up'")
        .await;
    let skipped = catch_up_once(&app.pool, &gateway, &wake_a)
        .await
        .expect("runs");
    assert!(skipped.is_none());
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE source = 'catch_up'")
            .await,
        caught_before
    );
    drop(other);

    // Two callers together: the missed events are stored once between them, and no two runs of
    // a job overlapped.
    let (a, b) = tokio::join!(
        catch_up_once(&app.pool, &gateway, &wake_a),
        catch_up_once(&app.pool, &gateway, &wake_b)
    );
    let inserted: usize = [a.expect("a"), b.expect("b")]
        .into_iter()
        .flatten()
        .map(|r| r.inserted)
        .sum();
    assert_eq!(
        inserted as i64,
        app.count("SELECT count(*) FROM webhook_events WHERE source = 'catch_up'")
            .await
            - caught_before
    );
    assert!(inserted >= 1);
    let (c, d) = tokio::join!(
        drift_once(&app.pool, &gateway, &catalog),
        drift_once(&app.pool, &gateway, &catalog)
    );
    let ran = [c.expect("c"), d.expect("d")].into_iter().flatten().count();
    assert!(ran >= 1);
    assert_eq!(
        app.count("SELECT count(*) FROM billing_drifts").await,
        1,
        "one drift, recorded once"
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM job_runs a JOIN job_runs b
               ON a.job = b.job AND a.id < b.id
              AND a.started_at < coalesce(b.finished_at, now())
              AND b.started_at < coalesce(a.finished_at, now())
             WHERE a.job IN ('stripe-catch-up', 'stripe-drift-check')"
        )
        .await,
        0,
        "no two runs of one job overlapped"
    );
}

use sqlx::Connection;
