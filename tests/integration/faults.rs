//! Faults: what the portal promises when things break. The portal runs as a child process (the
//! real binary), so a crash is a real `SIGKILL`; PostgreSQL is stopped and started under load;
//! Stripe goes away or answers late; and a `SIGTERM` arrives in the middle of traffic. Every
//! test checks what clients were told against what the database holds.

mod deliveries;
mod load;
mod portal;
mod stripe_proxy;

use std::time::{Duration, Instant};

use sqlx::PgPool;

use private_postgres::{ClusterOptions, PrivateCluster};
use reqwest::StatusCode;

use crate::harness::{
    fresh_database, hybrid_catalog, location, StandaloneStripe, TestApp, PASSWORD,
};
use deliveries::{invoice_paid, Deliveries};
use load::{answered_are_stored_once, no_drift, Load};
use portal::{Portal, WEBHOOK_SECRET};
use stripe_proxy::StripeProxy;

async fn pool(url: &str) -> PgPool {
    sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .connect(url)
        .await
        .expect("a pool on the test database")
}

async fn scalar(pool: &PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.expect(sql)
}

/// Polls `sql` until it returns `want` (at most `within`).
async fn wait_for(pool: &PgPool, sql: &str, want: i64, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let got = scalar(pool, sql).await;
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "waited {within:?} for {sql} = {want}, last saw {got}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_crash_mid_load_loses_no_answered_action_and_half_applies_none() {
    let (_, url) = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let portal = Portal::start(&url, dir.path(), &[]).await;
    let pool = pool(&url).await;
    let orgs = load::orgs(&pool, 6, 10_000_000).await;

    let traffic = Load::start(&portal.base, &orgs, 32);
    traffic.until_answered(2_000, Duration::from_secs(60)).await;
    portal.kill().await;
    let record = traffic.finish().await;
    assert!(
        record.other.is_empty(),
        "only 200s before the crash: {:?}",
        record.other
    );
    assert!(
        !record.unanswered.is_empty(),
        "the crash caught requests in flight"
    );

    // Before anything runs again: every answered action is there, once, as answered, and the
    // balances and counters agree with the actions (nothing half-written).
    answered_are_stored_once(&pool, &record).await;
    no_drift(&pool).await;

    // After a restart the clients retry what went unanswered, with the same keys: what the
    // crash had committed is answered as a replay, the rest is recorded now, each once.
    let portal = Portal::start(&url, dir.path(), &[]).await;
    let http = reqwest::Client::new();
    let mut retried = load::Record::default();
    for sent in &record.unanswered {
        let key = &orgs.iter().find(|o| o.id == sent.org).expect("org").key;
        let answers = load::send(&http, &portal.base, key, std::slice::from_ref(sent))
            .await
            .unwrap_or_else(|e| panic!("a retry after the restart was refused: {e:?}"));
        retried.answered.push((sent.clone(), answers[0].clone()));
    }
    answered_are_stored_once(&pool, &retried).await;
    let replays = retried
        .answered
        .iter()
        .filter(|(_, a)| a["replayed"] == true)
        .count();
    let total = record.answered.len() + record.unanswered.len();
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM usage_actions").await,
        total as i64,
        "every action sent is stored exactly once ({replays} had been committed unanswered)"
    );
    no_drift(&pool).await;
    assert!(!portal.logged("panicked"), "{}", portal.log_tail(40));
}

#[tokio::test]
async fn a_crash_during_webhook_delivery_and_apply_loses_no_acknowledged_event() {
    let (_, url) = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let portal = Portal::start(&url, dir.path(), &[]).await;
    let pool = pool(&url).await;
    let org = load::orgs(&pool, 1, 0).await.remove(0);
    sqlx::query(
        "INSERT INTO billing_customers (org_id, stripe_customer_id) VALUES ($1, 'cus_faults')",
    )
    .bind(org.id)
    .execute(&pool)
    .await
    .expect("customer");

    // Kill during delivery: 32 senders, the crash after 300 acknowledgements.
    let events: Vec<_> = (0..1_500)
        .map(|n| invoice_paid("a", n, "cus_faults"))
        .collect();
    let sending = Deliveries::start(&portal.base, WEBHOOK_SECRET, events, 32);
    while sending.acked() < 300 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    portal.kill().await;
    let first = sending.finish().await;
    assert!(first.refused.is_empty(), "{:?}", first.refused);
    assert!(!first.unacked.is_empty(), "the crash cut deliveries short");
    // Every acknowledged event is in the inbox.
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM webhook_events WHERE id = ANY($1)")
        .bind(&first.acked)
        .fetch_one(&pool)
        .await
        .expect("stored");
    assert_eq!(
        stored,
        first.acked.len() as i64,
        "every acknowledged event is stored"
    );

    // Kill during apply: the applier is held inside its transaction (the test holds the
    // invoices table), so the crash comes while events are claimed and half-way applied.
    let portal = Portal::start(&url, dir.path(), &[]).await;
    let mut hold = pool.begin().await.expect("tx");
    sqlx::query("LOCK TABLE invoices IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("lock");
    let retry = Deliveries::start(&portal.base, WEBHOOK_SECRET, first.unacked, 32);
    let second = retry.finish().await;
    assert!(
        second.unacked.is_empty() && second.refused.is_empty(),
        "{second:?}"
    );
    // An applier is waiting on the lock with events claimed.
    wait_for(
        &pool,
        "SELECT least(count(*), 1) FROM pg_locks WHERE relation = 'invoices'::regclass AND NOT granted",
        1,
        Duration::from_secs(20),
    )
    .await;
    portal.kill().await;
    hold.rollback().await.expect("release");
    let pending = scalar(
        &pool,
        "SELECT count(*) FROM webhook_events WHERE id LIKE 'evt\\_a\\_%' AND status = 'pending'",
    )
    .await;
    assert!(pending > 0, "events were still being applied at the crash");

    // After a restart every acknowledged event is applied, exactly once.
    let portal = Portal::start(&url, dir.path(), &[]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left: Vec<(String, String, i32, Option<String>)> = sqlx::query_as(
            "SELECT id, status, attempts, last_error FROM webhook_events
             WHERE id LIKE 'evt\\_a\\_%' AND status <> 'applied' ORDER BY id LIMIT 5",
        )
        .fetch_all(&pool)
        .await
        .expect("left");
        if left.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "events not applied 30 s after the restart: {left:?}\n{}",
            portal.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let ours = "SELECT count(*) FROM webhook_events WHERE id LIKE 'evt\\_a\\_%'";
    assert_eq!(scalar(&pool, ours).await, 1_500);
    assert_eq!(
        scalar(
            &pool,
            "SELECT count(*) FROM webhook_events WHERE id LIKE 'evt\\_a\\_%' AND attempts = 1"
        )
        .await,
        1_500,
        "each event was applied in exactly one committed transaction"
    );
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM invoices WHERE status = 'paid'").await,
        1_500
    );
    assert!(!portal.logged("panicked"), "{}", portal.log_tail(40));
}

/// A PostgreSQL of the test's own (the harness's cluster serves every other test), stopped and
/// started on the same folder.
struct OwnCluster {
    dir: std::path::PathBuf,
    running: Option<PrivateCluster>,
}

impl OwnCluster {
    async fn start(dir: std::path::PathBuf) -> Self {
        let mut cluster = Self { dir, running: None };
        cluster.up().await;
        cluster
    }

    async fn up(&mut self) {
        let dir = self.dir.clone();
        let started = tokio::task::spawn_blocking(move || {
            PrivateCluster::start(&dir, &ClusterOptions { durable: false })
        })
        .await
        .expect("join")
        .expect("PostgreSQL starts");
        self.running = Some(started);
    }

    /// A fast shutdown, as `pg_ctl stop -m fast`: sessions are cut, nothing new connects.
    async fn down(&mut self) {
        let cluster = self.running.take().expect("running");
        tokio::task::spawn_blocking(move || cluster.stop())
            .await
            .expect("join")
            .expect("PostgreSQL stops");
    }

    fn cluster(&self) -> &PrivateCluster {
        self.running.as_ref().expect("running")
    }
}

/// Times one request; panics past `bound`.
async fn timed(
    bound: Duration,
    request: reqwest::RequestBuilder,
) -> (StatusCode, String, Duration) {
    let started = Instant::now();
    let response = tokio::time::timeout(bound, request.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {bound:?}"))
        .expect("an answer");
    let status = response.status();
    let body = response.text().await.expect("body");
    (status, body, started.elapsed())
}

#[tokio::test]
async fn a_database_restart_under_load_answers_503_then_recovers_by_itself() {
    let dir = tempfile::tempdir().expect("dir");
    let mut pg = OwnCluster::start(dir.path().join("pg")).await;
    let (_, url) = private_postgres::throwaway::create_database(pg.cluster(), "faults")
        .await
        .expect("database");
    let portal_dir = dir.path().join("portal");
    std::fs::create_dir_all(&portal_dir).expect("dir");
    let portal = Portal::start(&url, &portal_dir, &[("DATABASE_TIMEOUT_SECONDS", "2")]).await;
    let orgs = {
        let pool = pool(&url).await;
        let orgs = load::orgs(&pool, 4, 10_000_000).await;
        sqlx::query(
            "INSERT INTO billing_customers (org_id, stripe_customer_id) VALUES ($1, 'cus_db')",
        )
        .bind(orgs[0].id)
        .execute(&pool)
        .await
        .expect("customer");
        pool.close().await;
        orgs
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let traffic = Load::start(&portal.base, &orgs, 8);
    traffic.until_answered(300, Duration::from_secs(60)).await;

    pg.down().await;
    // Requests fail fast and say why: 503 within the 2 s connection timeout (plus slack for a
    // loaded machine), never a hang or a dropped connection.
    let bound = Duration::from_secs(10);
    let (status, body, _) = timed(bound, http.get(portal.url("/healthz"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let action = serde_json::json!({ "tier": "small", "idempotency_key": "during-outage" });
    let (status, body, took) = timed(
        bound,
        http.post(portal.url("/api/v1/usage"))
            .bearer_auth(&orgs[0].key)
            .json(&action),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("\"code\":\"unavailable\""), "{body}");
    assert!(took < bound, "{took:?}");
    let (status, body, _) = timed(bound, http.get(portal.url("/invitations/some-token"))).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("cannot reach its database"), "{body}");
    let (id, payload) = invoice_paid("db", 0, "cus_db");
    let post_event = |payload: String| {
        http.post(portal.url("/webhooks/stripe"))
            .header("content-type", "application/json")
            .header(
                "stripe-signature",
                crate::billing::signed(WEBHOOK_SECRET, &payload),
            )
            .body(payload)
    };
    let (status, body, _) = timed(bound, post_event(payload.clone())).await;
    assert_eq!(
        status,
        StatusCode::SERVICE_UNAVAILABLE,
        "Stripe will retry: {body}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;

    pg.up().await;
    // The portal finds its database again by itself.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, _, _) = timed(bound, http.get(portal.url("/healthz"))).await;
        if status == StatusCode::OK {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "healthz never came back:\n{}",
            portal.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let record = traffic.finish().await;
    for (status, body) in &record.other {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    assert!(record.unanswered.is_empty(), "no connection was dropped");
    assert!(
        record.slowest < bound,
        "slowest answer {:?}",
        record.slowest
    );
    // Usage is recorded again, and the worker applies the event Stripe delivers again.
    let (status, body, _) = timed(
        bound,
        http.post(portal.url("/api/v1/usage"))
            .bearer_auth(&orgs[0].key)
            .json(&action),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body, _) = timed(bound, post_event(payload)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pool = pool(&url).await;
    assert_eq!(id, "evt_db_0");
    let applied =
        "SELECT count(*) FROM webhook_events WHERE id = 'evt_db_0' AND status = 'applied'";
    wait_for(&pool, applied, 1, Duration::from_secs(20)).await;
    answered_are_stored_once(&pool, &record).await;
    no_drift(&pool).await;
    assert!(!portal.logged("panicked"), "{}", portal.log_tail(40));
    drop(portal);
    pool.close().await;
    pg.down().await;
}

#[tokio::test]
async fn stripe_slow_or_down_fails_billing_clearly_in_bounded_time_and_the_next_try_works() {
    let emu = StandaloneStripe::start().await;
    billing_portal::stripe_gateway::Gateway::new(&emu.key, Some(&emu.base))
        .expect("gateway")
        .sync_catalog(&hybrid_catalog())
        .await
        .expect("catalog in Stripe");
    let proxy = StripeProxy::start(&emu.base).await;
    let app = TestApp::spawn_with(|s| {
        s.stripe_secret_key = Some(emu.key.parse().expect("key"));
        s.stripe_api_base = Some(proxy.url.clone());
        s.stripe_timeout_seconds = 2;
    })
    .await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    // Each refused attempt answers within a bound: a Stripe call gives up after 2 s.
    let bound = Duration::from_secs(12);
    let refused = |response: reqwest::Response, took: Duration, what: &'static str| async move {
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{what}");
        assert!(took < bound, "{what} took {took:?}");
        let page = response.text().await.expect("html");
        assert!(
            page.contains("Stripe could not be reached, so nothing was changed"),
            "{what}: {page}"
        );
    };

    for (mode, what) in [("hang", "slow"), ("refuse", "down")] {
        match mode {
            "hang" => proxy.hang(),
            _ => proxy.refuse(),
        }
        let started = Instant::now();
        let checkout = app
            .submit(
                "/orgs/acme/plans",
                "/forms/billing/checkout",
                &[("slug", "acme"), ("plan", "pro")],
            )
            .await;
        refused(checkout, started.elapsed(), what).await;
        // The credits page may itself ask Stripe (then it is refused just as clearly), so the
        // form is posted with the plans page's anti-forgery token.
        let started = Instant::now();
        let packs = app
            .submit(
                "/orgs/acme/plans",
                "/forms/credits/checkout",
                &[("slug", "acme"), ("packs", "1")],
            )
            .await;
        refused(packs, started.elapsed(), what).await;
        // Nothing half-written: no open Checkout, no pending purchase to block the next try.
        for sql in [
            "SELECT count(*) FROM checkout_sessions",
            "SELECT count(*) FROM credit_purchases",
            "SELECT count(*) FROM subscriptions",
        ] {
            assert_eq!(app.count(sql).await, 0, "{sql} after Stripe was {what}");
        }
    }

    // Stripe is back: the next try works.
    proxy.forward();
    let checkout = app
        .submit(
            "/orgs/acme/plans",
            "/forms/billing/checkout",
            &[("slug", "acme"), ("plan", "pro")],
        )
        .await;
    assert_eq!(checkout.status(), StatusCode::FOUND);
    assert!(
        location(&checkout).contains("/checkout/cs_"),
        "{}",
        location(&checkout)
    );
    assert_eq!(app.count("SELECT count(*) FROM checkout_sessions").await, 1);

    // A plan change and the card portal on a subscription.
    let trial = app.start_trial("acme", "pro").await;
    assert_eq!(trial.status(), StatusCode::FOUND);
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 1);
    // The forms are opened while Stripe answers (the change page previews the proration with
    // Stripe), and posted once it stopped answering.
    let mut change_form = form(
        &app,
        "/orgs/acme/billing/change?plan=max",
        "/forms/billing/change",
    )
    .await;
    change_form.retain(|(name, _)| name != "plan");
    change_form.push(("plan".to_owned(), "max".to_owned()));
    let portal_form = form(&app, "/orgs/acme/billing", "/forms/billing/portal").await;
    proxy.hang();
    let started = Instant::now();
    let change = app
        .client
        .post(app.url("/forms/billing/change"))
        .form(&change_form)
        .send()
        .await
        .expect("POST");
    refused(change, started.elapsed(), "slow").await;
    let plan = "SELECT plan_key FROM subscriptions";
    let kept: String = sqlx::query_scalar(plan)
        .fetch_one(&app.pool)
        .await
        .expect("plan");
    assert_eq!(kept, "pro", "the plan did not change");
    let started = Instant::now();
    let portal = app
        .client
        .post(app.url("/forms/billing/portal"))
        .form(&portal_form)
        .send()
        .await
        .expect("POST");
    refused(portal, started.elapsed(), "slow").await;

    proxy.forward();
    let change = app
        .submit(
            "/orgs/acme/billing/change?plan=max",
            "/forms/billing/change",
            &[("plan", "max")],
        )
        .await;
    assert_eq!(change.status(), StatusCode::FOUND);
    let now: String = sqlx::query_scalar(plan)
        .fetch_one(&app.pool)
        .await
        .expect("plan");
    assert_eq!(now, "max");
    let portal = app
        .submit("/orgs/acme/billing", "/forms/billing/portal", &[])
        .await;
    assert_eq!(portal.status(), StatusCode::FOUND);
    assert!(
        location(&portal).contains("/portal/bps_"),
        "{}",
        location(&portal)
    );
}

/// The fields of the form posting to `action` on `page`, as a browser would send them.
async fn form(app: &TestApp, page: &str, action: &str) -> Vec<(String, String)> {
    let html = app.get(page).await.text().await.expect("html");
    let fields = crate::harness::hidden_fields(&html, action);
    assert!(!fields.is_empty(), "no form for {action} on {page}: {html}");
    fields
}

#[tokio::test]
async fn sigterm_under_load_answers_what_it_took_and_stops_workers_between_batches() {
    let (_, url) = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut portal = Portal::start(&url, dir.path(), &[("SHUTDOWN_TIMEOUT_SECONDS", "20")]).await;
    let pool = pool(&url).await;
    let orgs = load::orgs(&pool, 4, 10_000_000).await;
    sqlx::query(
        "INSERT INTO billing_customers (org_id, stripe_customer_id) VALUES ($1, 'cus_term')",
    )
    .bind(orgs[0].id)
    .execute(&pool)
    .await
    .expect("customer");

    // An applier is in the middle of a batch (held on the invoices table) when the signal
    // comes; the lock is let go a second after it.
    let mut hold = pool.begin().await.expect("tx");
    sqlx::query("LOCK TABLE invoices IN EXCLUSIVE MODE")
        .execute(&mut *hold)
        .await
        .expect("lock");
    let events: Vec<_> = (0..50).map(|n| invoice_paid("t", n, "cus_term")).collect();
    let delivered = Deliveries::start(&portal.base, WEBHOOK_SECRET, events, 8)
        .finish()
        .await;
    assert_eq!(delivered.acked.len(), 50, "{delivered:?}");
    wait_for(
        &pool,
        "SELECT least(count(*), 1) FROM pg_locks WHERE relation = 'invoices'::regclass AND NOT granted",
        1,
        Duration::from_secs(20),
    )
    .await;

    let traffic = Load::start(&portal.base, &orgs, 16);
    traffic.until_answered(500, Duration::from_secs(60)).await;
    let started = Instant::now();
    portal.signal_term();
    tokio::time::sleep(Duration::from_secs(1)).await;
    hold.rollback().await.expect("release");
    let exited = portal
        .wait_exit(Duration::from_secs(30))
        .await
        .unwrap_or_else(|| panic!("still running 30 s after SIGTERM:\n{}", portal.log_tail(30)));
    let took = started.elapsed();
    assert!(
        exited.success(),
        "a clean exit: {exited}\n{}",
        portal.log_tail(30)
    );
    let record = traffic.finish().await;
    assert!(record.other.is_empty(), "{:?}", record.other);
    // In-flight requests were answered; what was not answered was never taken in.
    answered_are_stored_once(&pool, &record).await;
    let stored = load::stored(&pool).await;
    for sent in &record.unanswered {
        assert!(
            !stored.contains_key(&(sent.org, sent.key.clone())),
            "an action was stored but never answered: {sent:?}"
        );
    }
    no_drift(&pool).await;
    // The applier finished the batch it held, rather than being cut off in the middle.
    let applied = scalar(
        &pool,
        "SELECT count(*) FROM webhook_events WHERE id LIKE 'evt\\_t\\_%' AND status = 'applied'",
    )
    .await;
    assert!(
        applied > 0,
        "the batch in progress was committed at shutdown"
    );
    assert!(
        portal.logged("webhook worker stopped between batches"),
        "{}",
        portal.log_tail(30)
    );
    assert!(
        took < Duration::from_secs(15),
        "exited {took:?} after SIGTERM"
    );
}

#[tokio::test]
async fn a_shutdown_is_bounded_even_when_a_request_hangs() {
    let emu = StandaloneStripe::start().await;
    billing_portal::stripe_gateway::Gateway::new(&emu.key, Some(&emu.base))
        .expect("gateway")
        .sync_catalog(&hybrid_catalog())
        .await
        .expect("catalog in Stripe");
    let proxy = StripeProxy::start(&emu.base).await;
    proxy.hang();
    let (_, url) = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let mut portal = Portal::start(
        &url,
        dir.path(),
        &[
            ("STRIPE_SECRET_KEY", &emu.key),
            ("STRIPE_API_BASE", &proxy.url),
            ("STRIPE_TIMEOUT_SECONDS", "120"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    let pool = pool(&url).await;
    let org = load::orgs(&pool, 1, 0).await.remove(0);
    // Checkout bills the organization's owner (nobody logs in as them here).
    let email = billing_portal::accounts::model::Email::parse("owner@term.test").expect("email");
    let owner = billing_portal::accounts::repo::insert_user(&pool, &email, "unused", false)
        .await
        .expect("owner");
    billing_portal::orgs::repo::add_member(
        &pool,
        org.id,
        owner.id,
        billing_portal::orgs::model::Role::Owner,
    )
    .await
    .expect("membership");
    // The instance's own catch-up with Stripe's events, at start-up, hangs on the proxy too:
    // let it arrive first, so the count below tells when the Checkout itself is waiting.
    let settle = Instant::now() + Duration::from_secs(3);
    while proxy.held() == 0 && Instant::now() < settle {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let held_before = proxy.held();
    // A Checkout through the API waits on a Stripe that never answers.
    let base = portal.base.clone();
    let hanging = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("{base}/api/v1/checkout_sessions"))
            .bearer_auth(&org.key)
            .json(&serde_json::json!({ "plan": "pro" }))
            .send()
            .await
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    while proxy.held() <= held_before {
        assert!(
            Instant::now() < deadline,
            "the Checkout never reached Stripe"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    portal.signal_term();
    let exited = portal.wait_exit(Duration::from_secs(15)).await;
    assert!(
        exited.is_some(),
        "still running 15 s after SIGTERM with SHUTDOWN_TIMEOUT_SECONDS=2:\n{}",
        portal.log_tail(30)
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(portal.logged("requests still running at the shutdown deadline"));
    let _ = hanging.await;
    assert_eq!(
        scalar(&pool, "SELECT count(*) FROM checkout_sessions").await,
        0,
        "the cut-off Checkout left nothing behind"
    );
}
