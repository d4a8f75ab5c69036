//! The browser-facing attacks of the hardening issue, each through real HTTP: open redirects after
//! log-in, anti-forgery tokens replayed with another session, cross-site posts, missing framing
//! and content policies, session ids that survive log-out, and invisible characters or blank
//! passwords slipping through the forms.

use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, COOKIE, ORIGIN, REFERER};
use reqwest::StatusCode;

use crate::harness::{authenticity_token, location, set_cookie, TestApp, PASSWORD};

/// `name=value` of the cookie a response sets.
fn cookie_pair(headers: &HeaderMap, name: &str) -> String {
    set_cookie(headers, name)
        .unwrap_or_else(|| panic!("no {name} cookie set"))
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// A client that keeps no cookies: every cookie it sends is given by hand.
fn bare_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

async fn orgs_named(app: &TestApp, name: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM organizations WHERE name = $1")
        .bind(name)
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn login_never_redirects_off_site_whatever_next_says() {
    // Many log-ins in a row: not what the throttle is about here.
    let app = TestApp::spawn_with(|s| {
        s.login_attempts_per_account = 100;
        s.login_attempts_per_ip = 100;
    })
    .await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    app.log_out().await;

    for hostile in [
        "/\t/evil.example/",
        "/\n/evil.example/",
        "/\r\n/evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/%2F/evil.example",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
        "https://evil.example",
        "/\u{0}",
    ] {
        let response = app
            .submit(
                "/login",
                "/forms/login",
                &[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("next", hostile),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::FOUND,
            "next={hostile:?} signs in and redirects"
        );
        assert_eq!(location(&response), "/", "next={hostile:?} goes home");
        app.log_out().await;
    }

    // The link an attacker sends: the login page must not carry the target into its form.
    let page = app
        .get("/login?next=/%09/evil.example/")
        .await
        .text()
        .await
        .expect("body");
    assert!(
        !page.contains("evil.example"),
        "the login form does not keep an off-site target"
    );
    // A same-site target still works.
    let response = app
        .submit(
            "/login",
            "/forms/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "/orgs/acme/billing"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/orgs/acme/billing");
}

#[tokio::test]
async fn a_token_from_one_session_is_refused_with_another_sessions_cookie() {
    let app = TestApp::spawn().await;
    // The attacker opens a form in their own browser and keeps its cookies and token.
    let attacker = bare_client();
    let page = attacker.get(app.url("/signup")).send().await.expect("GET");
    let planted: Vec<String> = page
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter(|v| !v.starts_with("portal_session="))
        .filter_map(|v| v.split(';').next().map(str::to_owned))
        .collect();
    let token = authenticity_token(&page.text().await.expect("body"));

    // The victim is signed in.
    let signed_up = app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let victim_session = cookie_pair(signed_up.headers(), "portal_session");

    // The victim's session cookie, with the attacker's anti-forgery cookie and token planted.
    let cookies = [vec![victim_session], planted].concat().join("; ");
    let forged = bare_client()
        .post(app.url("/forms/orgs/create"))
        .header(COOKIE, cookies)
        .form(&[("authenticity_token", token.as_str()), ("name", "Planted")])
        .send()
        .await
        .expect("POST");
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert_eq!(orgs_named(&app, "Planted").await, 0, "nothing written");

    // The victim's own form still works.
    let own = app
        .submit("/orgs/new", "/forms/orgs/create", &[("name", "Own")])
        .await;
    assert_eq!(own.status(), StatusCode::FOUND);
    assert_eq!(orgs_named(&app, "Own").await, 1);
}

#[tokio::test]
async fn tokens_issued_before_login_stop_working_after_it() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    app.log_out().await;
    // A token the session held while anonymous (say, a session someone planted).
    let before = authenticity_token(&app.get("/login").await.text().await.expect("body"));
    let response = app.log_in("ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    let stale = app
        .client
        .post(app.url("/forms/orgs/create"))
        .form(&[("authenticity_token", before.as_str()), ("name", "Stale")])
        .send()
        .await
        .expect("POST");
    assert_eq!(stale.status(), StatusCode::FORBIDDEN);
    assert_eq!(orgs_named(&app, "Stale").await, 0);
}

#[tokio::test]
async fn a_cross_site_post_with_a_valid_token_is_refused() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    let post_from = |header: reqwest::header::HeaderName, value: String, name: &'static str| {
        let app = &app;
        async move {
            let page = app.get("/orgs/new").await.text().await.expect("body");
            let token = authenticity_token(&page);
            app.client
                .post(app.url("/forms/orgs/create"))
                .header(header, value)
                .form(&[("authenticity_token", token.as_str()), ("name", name)])
                .send()
                .await
                .expect("POST")
        }
    };

    let evil = post_from(ORIGIN, "https://evil.example".into(), "Evil").await;
    assert_eq!(evil.status(), StatusCode::FORBIDDEN);
    assert!(evil.text().await.expect("body").contains("another site"));
    let null = post_from(ORIGIN, "null".into(), "Null").await;
    assert_eq!(null.status(), StatusCode::FORBIDDEN);
    let referred = post_from(REFERER, "https://evil.example/page".into(), "Referred").await;
    assert_eq!(referred.status(), StatusCode::FORBIDDEN);
    for name in ["Evil", "Null", "Referred"] {
        assert_eq!(orgs_named(&app, name).await, 0, "{name}: nothing written");
    }

    // Our own origin, or our own page as the referrer, goes through.
    let ours = post_from(ORIGIN, app.base.clone(), "Ours").await;
    assert_eq!(ours.status(), StatusCode::FOUND);
    let referred_here = post_from(REFERER, app.url("/orgs/new"), "Here").await;
    assert_eq!(referred_here.status(), StatusCode::FOUND);
    assert_eq!(orgs_named(&app, "Ours").await, 1);
    assert_eq!(orgs_named(&app, "Here").await, 1);

    // Stripe's webhooks and the JSON API have no cookies and are not behind the check: a bad
    // signature is still a 400, a missing key still a 401.
    let webhook = app
        .client
        .post(app.url("/webhooks/stripe"))
        .header(ORIGIN, "https://evil.example")
        .header("stripe-signature", "t=1,v1=00")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(webhook.status(), StatusCode::BAD_REQUEST);
    let api = app
        .client
        .post(app.url("/api/v1/usage"))
        .header(ORIGIN, "https://evil.example")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
}

/// No inline style or event handlers at all, and no script but the ones carrying this response's
/// nonce (Leptos' serialized page data), which the policy names and nothing else can know.
fn assert_no_inline_code(headers: &HeaderMap, html: &str, what: &str) {
    for inline in ["<style", " style=", " onclick=", "javascript:"] {
        assert!(!html.contains(inline), "{what} has inline code: {inline}");
    }
    let scripts = html.matches("<script").count();
    if scripts == 0 {
        return;
    }
    let csp = headers
        .get(CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let nonce = csp
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{what} has scripts but its policy names no nonce: {csp}"));
    assert!(nonce.len() >= 16, "{what}: a short nonce {nonce:?}");
    assert_eq!(
        html.matches(&format!("<script nonce=\"{nonce}\">")).count(),
        scripts,
        "{what} has a script without this response's nonce"
    );
}

fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("{what}: no {name} header"))
            .to_owned()
    };
    let csp = get(CONTENT_SECURITY_POLICY.as_str());
    for directive in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: CSP {csp:?} lacks {directive}"
        );
    }
    assert!(
        !csp.contains("unsafe-inline"),
        "{what}: CSP allows inline code"
    );
    assert_eq!(get("x-frame-options"), "DENY", "{what}");
    assert_eq!(get("x-content-type-options"), "nosniff", "{what}");
    assert_eq!(
        get("referrer-policy"),
        "strict-origin-when-cross-origin",
        "{what}"
    );
}

#[tokio::test]
async fn every_page_forbids_framing_and_inline_code_and_http_gets_no_hsts() {
    let app = TestApp::spawn().await;
    let anonymous = ["/", "/login", "/signup", "/no-such-page"];
    for path in anonymous {
        let response = app.get(path).await;
        assert_security_headers(response.headers(), path);
        assert!(response
            .headers()
            .get("strict-transport-security")
            .is_none());
        let status = response.status();
        let headers = response.headers().clone();
        let html = response.text().await.expect("body");
        if path == "/no-such-page" {
            assert_eq!(status, StatusCode::NOT_FOUND);
        }
        assert_no_inline_code(&headers, &html, path);
    }

    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    for path in [
        "/orgs/acme",
        "/orgs/acme/billing",
        "/orgs/acme/plans",
        "/orgs/acme/usage",
        "/orgs/acme/credits",
        "/orgs/acme/api-keys",
        "/orgs/new",
        "/orgs/someone-elses",
        "/pkg/billing-portal.css",
        "/favicon.svg",
    ] {
        let response = app.get(path).await;
        assert_security_headers(response.headers(), path);
        if path.starts_with("/orgs/") {
            let headers = response.headers().clone();
            let html = response.text().await.expect("body");
            if path == "/orgs/acme" {
                // The usage meters are drawn without inline style.
                assert!(html.contains(r#"class="bar-fill""#), "{html}");
            }
            assert_no_inline_code(&headers, &html, path);
        }
    }

    // An error answer from a handler (a refused form) carries them too.
    let refused = app
        .client
        .post(app.url("/forms/orgs/create"))
        .form(&[("authenticity_token", "forged"), ("name", "X")])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_security_headers(refused.headers(), "a 403");
}

#[tokio::test]
async fn hsts_is_sent_when_the_public_address_is_https() {
    let app = TestApp::spawn_with(|s| s.app_url = Some("https://billing.example.com".into())).await;
    for path in ["/", "/login", "/no-such-page"] {
        let response = app.get(path).await;
        assert_security_headers(response.headers(), path);
        let hsts = response
            .headers()
            .get("strict-transport-security")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(hsts.starts_with("max-age="), "{path}: HSTS {hsts:?}");
    }
}

#[tokio::test]
async fn after_logout_the_old_session_cookie_is_useless() {
    let app = TestApp::spawn().await;
    let signed_up = app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let old = cookie_pair(signed_up.headers(), "portal_session");
    let old_id = old.trim_start_matches("portal_session=").to_owned();

    let logged_out = app.log_out().await;
    assert_eq!(logged_out.status(), StatusCode::FOUND);
    let new = cookie_pair(logged_out.headers(), "portal_session");
    assert_ne!(old, new, "log-out moves the browser to a new session id");
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM tower_sessions.session WHERE id = $1")
            .bind(&old_id)
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(stored, 0, "the old session is gone from the store");

    // Someone who copied the cookie before log-out gets the login page.
    let copied = bare_client()
        .get(app.url("/orgs/acme"))
        .header(COOKIE, old)
        .send()
        .await
        .expect("GET");
    assert_eq!(copied.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&copied), "/login?next=/orgs/acme");
    // The browser that logged out still sees the notice on its new session.
    let page = app.get("/login").await.text().await.expect("body");
    assert!(page.contains("You have been logged out."));
}

#[tokio::test]
async fn organization_names_with_invisible_or_direction_characters_are_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .submit(
            "/signup",
            "/forms/signup",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("org_name", "Ac\u{200B}me"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/signup");
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);

    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    for name in [
        "Evil\u{202E}gnp.exe",
        "\u{2066}Acme\u{2069}",
        "Acme\u{200F}",
        "\u{FEFF}Acme",
        "Acme\u{2060}",
        "Acme\u{200D}",
    ] {
        let response = app
            .submit("/orgs/new", "/forms/orgs/create", &[("name", name)])
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "{name:?} is refused");
        assert_eq!(location(&response), "/orgs/new");
        assert!(app
            .follow(&response)
            .await
            .text()
            .await
            .expect("body")
            .contains("invisible or control characters"));
    }
    assert_eq!(app.count("SELECT count(*) FROM organizations").await, 1);
}

#[tokio::test]
async fn a_password_of_only_spaces_is_refused() {
    let app = TestApp::spawn().await;
    let response = app
        .submit(
            "/signup",
            "/forms/signup",
            &[
                ("email", "ada@example.com"),
                ("password", "          "),
                ("org_name", "Acme"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(app
        .follow(&response)
        .await
        .text()
        .await
        .expect("body")
        .contains("not only spaces"));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
}
