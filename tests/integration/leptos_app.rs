//! The portal as a Leptos application: every server function is a public endpoint, so each is
//! tried the way an attacker would (no token, another session's token, another site, forged
//! error parameters), and the pages keep the statuses a browser relies on.

use reqwest::StatusCode;

use crate::harness::{authenticity_token, TestApp, PASSWORD};

/// Every server function the portal registers, with whether it is a page's read function.
fn server_functions() -> Vec<(String, bool)> {
    let mut paths: Vec<(String, bool)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| (path.to_owned(), path.starts_with("/forms/read/")))
        .collect();
    paths.sort();
    paths
}

#[test]
fn every_server_function_has_a_stable_address_outside_the_api() {
    let paths = server_functions();
    assert!(paths.len() >= 3, "{paths:?}");
    for (path, _) in &paths {
        assert!(path.starts_with("/forms/"), "{path} is not under /forms/");
        // The default address ends in a hash of the build's folder; ours are words.
        assert!(
            path.trim_start_matches("/forms/")
                .chars()
                .all(|c| c.is_ascii_lowercase() || "/-_".contains(c)),
            "{path} looks generated"
        );
    }
}

/// What changes when a form is accepted: none of it may move on a refused post.
async fn footprint(app: &TestApp) -> Vec<i64> {
    let mut counts = Vec::new();
    for table in [
        "users",
        "organizations",
        "memberships",
        "invitations",
        "subscriptions",
        "checkout_sessions",
        "credit_purchases",
        "billing_customers",
        "api_keys",
        "credit_ledger",
    ] {
        let exists = app
            .count(&format!(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = '{table}'"
            ))
            .await;
        if exists > 0 {
            counts.push(app.count(&format!("SELECT count(*) FROM {table}")).await);
        }
    }
    counts
}

#[tokio::test]
async fn every_form_refuses_a_missing_or_foreign_token_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    // Another person's valid token: issued to their session, not to this one.
    let other = app.another_browser();
    let page = app
        .get_with(&other, "/signup")
        .await
        .text()
        .await
        .expect("body");
    let foreign = authenticity_token(&page);
    let before = footprint(&app).await;
    for (path, is_read) in server_functions() {
        if is_read {
            continue;
        }
        for token in ["", foreign.as_str()] {
            let response = app
                .client
                .post(app.url(&path))
                .form(&[
                    ("authenticity_token", token),
                    ("slug", "acme"),
                    ("email", "bob@example.com"),
                    ("password", PASSWORD),
                    ("org_name", "Forged"),
                    ("name", "Forged"),
                    ("plan", "pro"),
                ])
                .send()
                .await
                .expect("POST");
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{path} with token {token:?}"
            );
        }
    }
    assert_eq!(
        footprint(&app).await,
        before,
        "a refused form wrote something"
    );
    assert_eq!(
        app.get("/orgs/acme").await.status(),
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn a_cross_origin_post_to_a_server_function_is_refused() {
    let app = TestApp::spawn().await;
    let page = app.get("/signup").await.text().await.expect("body");
    let token = authenticity_token(&page);
    let response = app
        .client
        .post(app.url("/forms/signup"))
        .header("Origin", "https://evil.example")
        .form(&[
            ("authenticity_token", token.as_str()),
            ("email", "ada@example.com"),
            ("password", PASSWORD),
            ("org_name", "Acme"),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}

#[tokio::test]
async fn a_forged_error_in_the_address_shows_nothing() {
    use base64::Engine;
    let app = TestApp::spawn().await;
    // What Leptos would put in the address after a failed form post, here made up by an
    // attacker who sends the link to a victim.
    let forged = base64::engine::general_purpose::URL_SAFE
        .encode(r#"{"Invalid":{"email":"Your account is locked: call +1 555 0100"}}"#);
    for path in ["/signup", "/login"] {
        let html = app
            .get(&format!(
                "{path}?__path=/forms{path}&__err={forged}&email=x%40evil.example"
            ))
            .await
            .text()
            .await
            .expect("body");
        assert!(
            !html.contains("call +1 555 0100"),
            "{path} showed the forged error"
        );
        assert!(
            !html.contains("aria-invalid"),
            "{path} marked a field as wrong"
        );
        assert!(
            !html.contains("x@evil.example"),
            "{path} echoed the address"
        );
    }
}

#[tokio::test]
async fn pages_keep_their_statuses_through_the_router() {
    let app = TestApp::spawn().await;
    assert_eq!(app.get("/").await.status(), StatusCode::OK);
    assert_eq!(app.get("/login").await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/no-such-page").await.status(),
        StatusCode::NOT_FOUND
    );
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let missing = app.get("/orgs/nobody-here").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing
        .text()
        .await
        .expect("body")
        .contains("We could not find that page."));
    let forbidden = app.get("/admin").await;
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    // A page has its own title.
    let html = app.get("/orgs/acme").await.text().await.expect("body");
    assert!(
        html.contains("<title>Acme · Billing portal</title>"),
        "{html}"
    );
}

/// A page without a form stores nothing for a visitor: no session row per anonymous view (a
/// crawler would otherwise grow the session table by one row, and a durable commit, a view).
#[tokio::test]
async fn a_visitor_viewing_pages_without_forms_creates_no_session() {
    let app = TestApp::spawn().await;
    let sessions = || app.count("SELECT count(*) FROM tower_sessions.session");
    for path in ["/", "/no-such-page", "/", "/pkg/billing-portal.css"] {
        let response = app
            .another_browser()
            .get(app.url(path))
            .send()
            .await
            .expect("GET");
        assert!(
            crate::harness::set_cookie(response.headers(), "portal_session").is_none(),
            "{path} set a session cookie"
        );
    }
    assert_eq!(sessions().await, 0);
    // A page with a form needs the session's secret for its token.
    let login = app
        .another_browser()
        .get(app.url("/login"))
        .send()
        .await
        .expect("GET");
    assert!(crate::harness::set_cookie(login.headers(), "portal_session").is_some());
    assert_eq!(sessions().await, 1);
}
