//! Sessions and who-belongs-where are kept in each instance's memory; these tests run two
//! instances on one database and check that a change made through one (or by the command line)
//! is seen by the other at once, and that a lost notification connection never leaves a stale copy.

use std::time::{Duration, Instant};

use reqwest::header::{COOKIE, LOCATION};
use reqwest::StatusCode;

use crate::harness::{set_cookie, TestApp, PASSWORD};

/// How long the other instance may take to hear a change (a notice crosses loopback in
/// milliseconds; without notices a copy would be trusted for many minutes).
const AT_ONCE: Duration = Duration::from_secs(2);

/// The `name=value` of the session cookie a response set.
fn session_cookie(response: &reqwest::Response) -> String {
    let header = set_cookie(response.headers(), "portal_session").expect("a session cookie");
    header.split(';').next().expect("name=value").to_owned()
}

/// A client without a cookie jar: it sends exactly the cookie it is given.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn status_with_cookie(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = bare_client()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .header(reqwest::header::ACCEPT, "text/html")
        .send()
        .await
        .expect("request");
    let status = response.status();
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location)
}

/// Whether `path`, viewed with `cookie`, shows the platform admin's link.
async fn shows_admin_link(app: &TestApp, cookie: &str, path: &str) -> bool {
    bare_client()
        .get(app.url(path))
        .header(COOKIE, cookie)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body")
        .contains(r#"href="/admin""#)
}

/// Polls `check` until it holds or [`AT_ONCE`] has passed; returns how long it took.
async fn within_at_once<F, Fut>(mut check: F) -> Option<Duration>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < AT_ONCE {
        if check().await {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

#[tokio::test]
async fn signing_out_on_one_instance_ends_the_session_on_another_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(a.database_url.clone(), |_| {}).await;
    let signed_up = a.sign_up("cache@example.com", PASSWORD, "Cache Co").await;
    let cookie = session_cookie(&signed_up);

    // The other instance serves the session, twice, so its copy is in memory.
    for _ in 0..2 {
        let (status, _) = status_with_cookie(&b, &cookie, "/orgs/cache-co").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the session works on the other instance"
        );
    }

    let logged_out = a.log_out().await;
    assert_eq!(logged_out.status(), StatusCode::FOUND);

    let refused = within_at_once(|| async {
        let (status, location) = status_with_cookie(&b, &cookie, "/orgs/cache-co").await;
        status == StatusCode::SEE_OTHER
            || status == StatusCode::FOUND && location.starts_with("/login")
    })
    .await;
    assert!(
        refused.is_some(),
        "the copied cookie still opened the dashboard on the other instance after signing out"
    );
}

#[tokio::test]
async fn a_change_made_by_the_command_line_shows_on_every_instance_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(a.database_url.clone(), |_| {}).await;
    let signed_up = a.sign_up("promoted@example.com", PASSWORD, "Promo").await;
    let cookie = session_cookie(&signed_up);
    for app in [&a, &b] {
        for _ in 0..2 {
            assert!(
                !shows_admin_link(app, &cookie, "/orgs/promo/billing").await,
                "not an admin yet"
            );
        }
    }

    // Another process changes the user: the command line, straight to the database.
    a.cli_ok(&["create-admin", "promoted@example.com"]);

    for app in [&a, &b] {
        let shown = within_at_once(|| shows_admin_link(app, &cookie, "/orgs/promo/billing")).await;
        assert!(
            shown.is_some(),
            "the admin link did not appear on {}",
            app.base
        );
    }
}

#[tokio::test]
async fn a_lost_notice_connection_leaves_no_stale_copy() {
    let a = TestApp::spawn().await;
    let signed_up = a.sign_up("lost@example.com", PASSWORD, "Lost").await;
    let cookie = session_cookie(&signed_up);
    let admin_link = || shows_admin_link(&a, &cookie, "/orgs/lost/billing");
    assert!(!admin_link().await);
    assert!(!admin_link().await, "the user is now in memory");

    // Cut the connection the notices arrive on, and wait until it is really gone.
    let listeners = "SELECT pid FROM pg_stat_activity
                     WHERE datname = current_database() AND query ILIKE 'LISTEN%portal_cache%'";
    let pids: Vec<i32> = sqlx::query_scalar(listeners)
        .fetch_all(&a.pool)
        .await
        .expect("listeners");
    assert!(!pids.is_empty(), "the instance listens for cache notices");
    for pid in &pids {
        sqlx::query("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .execute(&a.pool)
            .await
            .expect("terminate");
    }
    let gone = within_at_once(|| async {
        let alive: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY($1)")
                .bind(&pids)
                .fetch_one(&a.pool)
                .await
                .expect("count");
        alive == 0
    })
    .await;
    assert!(gone.is_some());

    // A change while nobody listens: its notice is lost.
    sqlx::query("UPDATE users SET is_platform_admin = true WHERE email = 'lost@example.com'")
        .execute(&a.pool)
        .await
        .expect("update");

    // The instance listens again by itself, and serves the change, not its old copy.
    let back = within_at_once(|| async {
        let now: Vec<i32> = sqlx::query_scalar(listeners)
            .fetch_all(&a.pool)
            .await
            .expect("listeners");
        !now.is_empty()
    })
    .await;
    assert!(back.is_some(), "the instance did not listen again");
    assert!(
        admin_link().await,
        "a stale copy survived the lost connection"
    );
}

/// An API call with `key` to the instance `app`: its status.
async fn api_status(app: &TestApp, key: &str, path: &str) -> StatusCode {
    bare_client()
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .expect("API call")
        .status()
}

#[tokio::test]
async fn a_key_revoked_on_one_instance_is_refused_on_another_at_once() {
    let a = TestApp::spawn().await;
    let b = TestApp::spawn_on(a.database_url.clone(), |_| {}).await;
    a.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    let key = a.api_key().await;
    // The other instance verifies the key and keeps it (the second call is served from memory:
    // no lookup marks it used again).
    for _ in 0..2 {
        assert_eq!(
            api_status(&b, &key, "/api/v1/entitlements").await,
            StatusCode::OK
        );
    }

    // Revoked on the first instance's keys page.
    let revoked = a
        .submit("/orgs/acme/api-keys", "/forms/api-keys/revoke", &[])
        .await;
    assert_eq!(revoked.status(), StatusCode::FOUND);
    assert_eq!(
        a.count("SELECT count(*) FROM api_keys WHERE revoked_at IS NOT NULL")
            .await,
        1
    );

    let refused = within_at_once(|| async {
        api_status(&b, &key, "/api/v1/entitlements").await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the other instance kept accepting a revoked key"
    );
}

#[tokio::test]
async fn a_purchase_on_one_instance_shows_in_another_instances_entitlements_at_once() {
    let a = TestApp::spawn().await;
    // The other instance keeps answers for a long time, so only a notice can refresh them.
    let b = TestApp::spawn_on(a.database_url.clone(), |s| {
        s.entitlements_cache_milliseconds = 60_000
    })
    .await;
    a.signed_up_owner().await;
    let key = a.api_key().await;
    let balance = |app: &TestApp| {
        let key = key.clone();
        let url = app.url("/api/v1/entitlements");
        async move {
            let body: serde_json::Value = bare_client()
                .get(url)
                .bearer_auth(&key)
                .send()
                .await
                .expect("entitlements")
                .json()
                .await
                .expect("json");
            body["credits"]["balance_millicredits"].as_i64()
        }
    };
    assert_eq!(balance(&b).await, Some(0));
    assert_eq!(
        balance(&b).await,
        Some(0),
        "now in the other instance's memory"
    );

    // Bought on the first instance: its Checkout, its webhook.
    let paid = a.buy_packs("1", "4242 4242 4242 4242").await;
    assert_eq!(paid.status(), StatusCode::SEE_OTHER, "paid");
    a.settled().await;
    assert_eq!(balance(&a).await, Some(500_000));

    // The other instance had the old answer in memory; the purchase's notice drops it.
    let shown = within_at_once(|| async { balance(&b).await == Some(500_000) }).await;
    assert!(
        shown.is_some(),
        "the other instance kept serving the balance from before the purchase"
    );
}
