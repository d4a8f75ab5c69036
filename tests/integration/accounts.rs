//! Signing up, logging in and out, and what bad input and forged forms get.

use reqwest::StatusCode;

use crate::harness::{assert_throttled, location, set_cookie, TestApp, PASSWORD};

#[tokio::test]
async fn signup_creates_user_org_and_owner_membership_and_signs_in() {
    let app = TestApp::spawn().await;
    let response = app
        .sign_up("Ada@Example.com", PASSWORD, "Analytical Engines")
        .await;
    assert_eq!(location(&response), "/orgs/analytical-engines");

    let page = app.get("/orgs/analytical-engines").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("<h1>Analytical Engines</h1>"));
    assert!(html.contains("Welcome! Analytical Engines is ready."));
    // Addresses are stored and shown in their one normalized (lowercase) form.
    assert!(html.contains("ada@example.com"));
    assert!(html.contains("<strong>owner</strong>"));

    let role: String = sqlx::query_scalar(
        "SELECT m.role FROM memberships m JOIN users u ON u.id = m.user_id
         JOIN organizations o ON o.id = m.org_id
         WHERE u.email = 'ada@example.com' AND o.slug = 'analytical-engines'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("membership row");
    assert_eq!(role, "owner");
    let hash: String = sqlx::query_scalar("SELECT password_hash FROM users")
        .fetch_one(&app.pool)
        .await
        .expect("user");
    assert!(
        hash.starts_with("$argon2id$"),
        "password stored as argon2id"
    );
}

#[tokio::test]
async fn the_start_page_sends_a_signed_in_user_to_their_organization() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let response = app.get("/").await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/orgs/acme");
}

#[tokio::test]
async fn log_out_then_log_in_again() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    let response = app.log_out().await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/login");
    let login_page = app.get("/login").await.text().await.expect("body");
    assert!(login_page.contains("You have been logged out."));
    let response = app.get("/orgs/acme").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=/orgs/acme");

    // Email matching ignores case.
    let response = app.log_in("ADA@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/");
    assert_eq!(app.get("/orgs/acme").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn login_returns_to_the_page_that_asked_for_it_but_never_off_site() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    app.log_out().await;

    let response = app
        .submit(
            "/login?next=/orgs/acme",
            "/forms/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "/orgs/acme"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/orgs/acme");
    app.log_out().await;
    let response = app
        .submit(
            "/login",
            "/forms/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/");
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_answer() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    app.log_out().await;

    let wrong = app.log_in("ada@example.com", "not the password").await;
    assert_eq!(wrong.status(), StatusCode::FOUND);
    assert_eq!(location(&wrong), "/login");
    let wrong = app.follow(&wrong).await.text().await.expect("body");
    let unknown = app.log_in("nobody@example.com", PASSWORD).await;
    assert_eq!(unknown.status(), StatusCode::FOUND);
    assert_eq!(location(&unknown), "/login");
    let unknown = app.follow(&unknown).await.text().await.expect("body");
    let message = "The email or password is incorrect.";
    assert!(wrong.contains(message) && unknown.contains(message));
    // The typed address is kept, the password never.
    assert!(wrong.contains("value=\"ada@example.com\""));
    assert!(!wrong.contains("not the password"));
    // Still signed out.
    assert_eq!(app.get("/orgs/acme").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn login_rotates_the_session_id_and_sets_safe_cookies() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let before = app.log_out().await;
    // Logging out leaves an anonymous session holding the flash message.
    let anonymous = set_cookie(before.headers(), "portal_session").expect("session cookie");
    let response = app.log_in("ada@example.com", PASSWORD).await;
    let after = set_cookie(response.headers(), "portal_session").expect("new session cookie");
    let id = |cookie: &str| cookie.split(';').next().unwrap_or_default().to_owned();
    assert_ne!(id(&anonymous), id(&after), "session id changes at login");
    assert!(after.contains("HttpOnly"));
    assert!(after.contains("SameSite=Lax"));
    assert!(
        !after.contains("Secure"),
        "plain HTTP on loopback is local development"
    );
}

#[tokio::test]
async fn cookies_are_secure_when_served_over_https() {
    let app = TestApp::spawn_with(|s| s.app_url = Some("https://billing.example.com".into())).await;
    // The login form's anti-forgery secret lives in the session, so the page starts one.
    let page = app.get("/login").await;
    let session = set_cookie(page.headers(), "portal_session").expect("session cookie");
    assert!(session.contains("Secure") && session.contains("HttpOnly"));
    assert!(
        set_cookie(page.headers(), "portal_csrf").is_none(),
        "no separate anti-forgery cookie any more"
    );
}

#[tokio::test]
async fn duplicate_email_is_refused_whatever_its_case() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let other = app.another_browser();
    let response = app
        .submit_with(
            &other,
            "/signup",
            "/forms/signup",
            &[
                ("email", "ADA@example.com"),
                ("password", PASSWORD),
                ("org_name", "Second"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/signup");
    let html = app
        .follow_with(&other, &response)
        .await
        .text()
        .await
        .expect("body");
    assert!(html.contains("An account with this email already exists."));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT count(*) FROM organizations").await, 1);
}

#[tokio::test]
async fn bad_signup_input_gets_a_message_per_field_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let long_name = "x".repeat(101);
    let cases: [(&str, &str, &str, &str); 5] = [
        ("", PASSWORD, "Acme", "Enter your email address."),
        (
            "not-an-email",
            PASSWORD,
            "Acme",
            "is not a valid email address.",
        ),
        ("ada@example.com", "short", "Acme", "at least 10 characters"),
        (
            "ada@example.com",
            PASSWORD,
            &long_name,
            "too long (at most 100 characters)",
        ),
        (
            "ada@example.com",
            PASSWORD,
            "   ",
            "Enter an organization name.",
        ),
    ];
    for (email, password, org, message) in cases {
        let response = app
            .submit(
                "/signup",
                "/forms/signup",
                &[("email", email), ("password", password), ("org_name", org)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "{message}");
        assert_eq!(location(&response), "/signup");
        let html = app.follow(&response).await.text().await.expect("body");
        assert!(html.contains(message), "expected {message:?} in the page");
        assert!(html.contains("aria-invalid=\"true\""));
        assert!(
            !html.contains(PASSWORD),
            "the password is never echoed back"
        );
        if !org.trim().is_empty() && org.len() <= 100 {
            assert!(
                html.contains(&format!("value=\"{org}\"")),
                "typed name kept"
            );
        }
        // Shown once: a reload is a clean form.
        let again = app.get("/signup").await.text().await.expect("body");
        assert!(!again.contains(message), "{message:?} shown twice");
    }
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    assert_eq!(app.count("SELECT count(*) FROM organizations").await, 0);
}

#[tokio::test]
async fn a_forged_or_missing_anti_forgery_token_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.get("/signup").await; // the browser has a token cookie
    let fields = [
        ("email", "ada@example.com"),
        ("password", PASSWORD),
        ("org_name", "Acme"),
    ];
    let forged = app
        .client
        .post(app.url("/forms/signup"))
        .form(&[&fields[..], &[("authenticity_token", "Zm9yZ2Vk")]].concat())
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(forged
        .text()
        .await
        .expect("body")
        .contains("This form has expired"));

    // A request from another site carries no cookie of ours at all.
    let cross_site = app
        .another_browser()
        .post(app.url("/forms/signup"))
        .form(&fields)
        .send()
        .await
        .expect("POST");
    assert_eq!(cross_site.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);

    // Logging out is a state change too.
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let forged_logout = app
        .client
        .post(app.url("/forms/logout"))
        .form(&[("authenticity_token", "Zm9yZ2Vk")])
        .send()
        .await
        .expect("POST");
    assert_eq!(forged_logout.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/orgs/acme").await.status(),
        StatusCode::OK,
        "still signed in"
    );
}

#[tokio::test]
async fn login_is_rate_limited_per_account() {
    let app = TestApp::spawn_with(|s| s.login_attempts_per_account = 3).await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    app.log_out().await;
    for _ in 0..3 {
        let response = app.log_in("ada@example.com", "wrong password").await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(location(&response), "/login");
    }
    // Now even the right password is refused until the allowance refills.
    let response = app.log_in("ada@example.com", PASSWORD).await;
    assert_throttled(response, "Too many login attempts").await;
    assert_eq!(app.get("/orgs/acme").await.status(), StatusCode::SEE_OTHER);
    // Another account is not affected.
    let other = app.another_browser();
    let response = app.log_in_with(&other, "bob@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/login");
}

#[tokio::test]
async fn login_is_rate_limited_per_address() {
    let app = TestApp::spawn_with(|s| {
        s.login_attempts_per_ip = 4;
        s.login_attempts_per_account = 100;
    })
    .await;
    for n in 0..4 {
        let response = app.log_in(&format!("user{n}@example.com"), PASSWORD).await;
        assert_eq!(response.status(), StatusCode::FOUND);
        assert_eq!(location(&response), "/login");
    }
    let response = app.log_in("user9@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
}

/// Reading pages must not write the session: that was an upsert and a durable commit per view.
/// Only a real change (a flash, another organization, the day's keep-alive) saves it.
#[tokio::test]
async fn viewing_pages_does_not_write_the_session() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    // The first views take the welcome message and make the day's keep-alive.
    for path in ["/orgs/acme", "/orgs/acme/billing"] {
        assert_eq!(app.get(path).await.status(), StatusCode::OK);
    }
    let versions = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT string_agg(id || ':' || xmin::text, ',' ORDER BY id) FROM tower_sessions.session",
        )
        .fetch_one(&app.pool)
        .await
        .expect("sessions")
    };
    let before = versions().await;
    for _ in 0..3 {
        for path in [
            "/orgs/acme",
            "/orgs/acme/billing",
            "/orgs/acme/usage",
            "/orgs/acme/credits",
        ] {
            assert_eq!(app.get(path).await.status(), StatusCode::OK, "{path}");
            assert_eq!(versions().await, before, "viewing {path} wrote the session");
        }
    }
    // A change is still saved: a flash after a form, shown once.
    let created = app
        .submit(
            "/orgs/new",
            "/forms/orgs/create",
            &[("name", "Second Team")],
        )
        .await;
    assert_eq!(created.status(), StatusCode::FOUND);
    assert_ne!(versions().await, before);
}
