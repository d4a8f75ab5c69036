//! The browser-facing attacks of the hardening issue, each through real HTTP: open redirects after
//! log-in.

use reqwest::StatusCode;

use crate::harness::{location, TestApp, PASSWORD};

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
                "/login",
                &[
                    ("email", "ada@example.com"),
                    ("password", PASSWORD),
                    ("next", hostile),
                ],
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
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
            "/login",
            &[
                ("email", "ada@example.com"),
                ("password", PASSWORD),
                ("next", "/orgs/acme/billing"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/orgs/acme/billing");
}
