//! Organizations seen through memberships, switching between them, inviting members, and the
//! platform admin pages.

use reqwest::StatusCode;

use crate::harness::{location, TestApp, PASSWORD};

#[tokio::test]
async fn a_member_of_one_org_gets_404_for_another_orgs_pages() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Org A").await;
    let bob = app.another_browser();
    let response = app
        .submit_with(
            &bob,
            "/signup",
            "/signup",
            &[
                ("email", "bob@example.com"),
                ("password", PASSWORD),
                ("org_name", "Org B"),
            ],
        )
        .await;
    assert_eq!(location(&response), "/orgs/org-b");

    // Ada sees her org, and Org B exactly as if it did not exist.
    assert_eq!(app.get("/orgs/org-a").await.status(), StatusCode::OK);
    let theirs = app.get("/orgs/org-b").await;
    assert_eq!(theirs.status(), StatusCode::NOT_FOUND);
    let html = theirs.text().await.expect("body");
    assert!(!html.contains("bob@example.com"));
    assert_eq!(
        app.get("/orgs/no-such-org").await.status(),
        StatusCode::NOT_FOUND
    );

    // Nor can she invite herself into it.
    let response = app
        .submit(
            "/orgs/org-a",
            "/orgs/org-b/invitations",
            &[("email", "ada@example.com"), ("role", "owner")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("SELECT count(*) FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE o.slug = 'org-b'")
            .await,
        1
    );
}

#[tokio::test]
async fn a_user_can_create_and_switch_between_organizations() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let response = app
        .submit("/orgs/new", "/orgs/new", &[("name", "Acme")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // The name is taken as a slug, so the second one gets a suffix.
    let second = location(&response);
    assert!(
        second.starts_with("/orgs/acme-") && second.len() == "/orgs/acme-".len() + 6,
        "{second}"
    );

    let html = app.get(&second).await.text().await.expect("body");
    assert!(html.contains("Acme is ready."));
    // The switcher lists both, the current one marked.
    assert_eq!(html.matches("<li><a href=\"/orgs/acme").count(), 2);
    assert!(html.contains(&format!("<a href=\"{second}\" aria-current=\"page\">")));

    // The start page now leads to the organization looked at last.
    assert_eq!(location(&app.get("/").await), second);
    app.get("/orgs/acme").await;
    assert_eq!(location(&app.get("/").await), "/orgs/acme");
}

#[tokio::test]
async fn an_overlong_organization_name_is_refused_and_writes_nothing() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let response = app
        .submit("/orgs/new", "/orgs/new", &[("name", &"n".repeat(101))])
        .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response
        .text()
        .await
        .expect("body")
        .contains("at most 100 characters"));
    assert_eq!(app.count("SELECT count(*) FROM organizations").await, 1);
}

#[tokio::test]
async fn names_are_escaped_in_pages() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "<script>alert(1)</script>")
        .await;
    let html = app.get("/").await;
    let target = location(&html);
    let page = app.get(&target).await.text().await.expect("body");
    assert!(!page.contains("<script>alert(1)</script>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[tokio::test]
async fn owners_invite_people_who_join_by_accepting_and_members_cannot_invite() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@example.com", "Bob's").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    let bad_role = app
        .submit(
            "/orgs/acme",
            "/orgs/acme/invitations",
            &[("email", "bob@example.com"), ("role", "root")],
        )
        .await;
    assert_eq!(bad_role.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let link = app
        .invitation_link(&app.client, "acme", "bob@example.com", "member")
        .await;
    let accepted = app.accept_with(&bob, &link).await;
    assert_eq!(location(&accepted), "/orgs/acme");
    let html = app
        .get_with(&bob, "/orgs/acme")
        .await
        .text()
        .await
        .expect("body");
    assert!(html.contains("You joined Acme as member."));

    let again = app
        .submit(
            "/orgs/acme",
            "/orgs/acme/invitations",
            &[("email", "bob@example.com"), ("role", "admin")],
        )
        .await;
    assert!(again
        .text()
        .await
        .expect("body")
        .contains("already a member"));

    // Bob now sees Acme, as a member, without the form to invite people, and is refused if he
    // posts.
    let page = app
        .get_with(&bob, "/orgs/acme")
        .await
        .text()
        .await
        .expect("body");
    assert!(page.contains("<strong>member</strong>"));
    assert!(!page.contains("Invite someone"));
    let refused = app
        .submit_with(
            &bob,
            "/orgs/acme",
            "/orgs/acme/invitations",
            &[("email", "carol@example.com"), ("role", "member")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 3);
}

#[tokio::test]
async fn admin_pages_are_refused_to_everyone_but_platform_admins() {
    let app = TestApp::spawn().await;
    let anonymous = app.get("/admin").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login?next=/admin");

    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let refused = app.get("/admin").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(!app
        .get("/orgs/acme")
        .await
        .text()
        .await
        .expect("body")
        .contains("href=\"/admin\""));

    // The operator grants the flag from the command line.
    let stdout = app.cli_ok(&["create-admin", "ADA@example.com"]);
    assert!(stdout.contains("is now a platform admin"));

    let page = app.get("/admin").await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("body");
    assert!(html.contains("href=\"/admin/orgs/acme\""));
    assert!(html.contains("ada@example.com"));
}

#[tokio::test]
async fn create_admin_makes_a_new_account_with_a_password_shown_once() {
    let app = TestApp::spawn().await;
    let stdout = app.cli_ok(&["create-admin", "ops@example.com"]);
    let password = stdout
        .split("password: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("printed password")
        .to_owned();
    let response = app.log_in("ops@example.com", &password).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    // No organization yet: the start page offers to create one; the admin page is open.
    assert_eq!(location(&app.get("/").await), "/orgs/new");
    assert_eq!(app.get("/admin").await.status(), StatusCode::OK);

    let bad = app.cli(&["create-admin", "not-an-email"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid email address"));
}

/// Acme's owner, a platform admin in their own browser, and a webhook event about Acme that
/// failed (so a replay would change it).
async fn admin_and_event(app: &TestApp) -> reqwest::Client {
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let admin = app.another_browser();
    let signed_up = app
        .submit_with(
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
    assert_eq!(location(&signed_up), "/orgs/platform");
    app.cli_ok(&["create-admin", "ops@platform.test"]);
    sqlx::query(
        "INSERT INTO webhook_events (id, type, created, payload, status, last_error, org_id)
         SELECT 'evt_failed', 'customer.updated', 0, '{\"secret\": \"payload\"}', 'failed', 'boom', id
         FROM organizations WHERE slug = 'acme'",
    )
    .execute(&app.pool)
    .await
    .expect("event");
    admin
}

#[tokio::test]
async fn admin_forms_refuse_a_missing_or_foreign_token_and_write_nothing() {
    let app = TestApp::spawn().await;
    let admin = admin_and_event(&app).await;
    // A real token, but of another session (Ada's).
    let foreign = crate::harness::authenticity_token(
        &app.get("/orgs/acme").await.text().await.expect("html"),
    );
    // The admin's session has a token of its own to be told apart from.
    assert_eq!(
        app.get_with(&admin, "/admin").await.status(),
        StatusCode::OK
    );
    let forms: [(&str, Vec<(&str, &str)>); 2] = [
        (
            "/forms/admin/credits",
            vec![
                ("slug", "acme"),
                ("change", "grant"),
                ("credits", "5"),
                ("reason", "Forged"),
            ],
        ),
        ("/forms/admin/webhooks/replay", vec![("id", "evt_failed")]),
    ];
    for (action, fields) in forms {
        for token in [None, Some(foreign.as_str())] {
            let mut form = fields.clone();
            form.extend(token.map(|t| ("authenticity_token", t)));
            let response = admin
                .post(app.url(action))
                .form(&form)
                .send()
                .await
                .expect("POST");
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{action} {token:?}"
            );
            assert!(response
                .text()
                .await
                .expect("body")
                .contains("This form has expired"));
        }
    }
    assert_eq!(app.count("SELECT count(*) FROM credit_ledger").await, 0);
    assert_eq!(
        app.count(
            "SELECT count(*) FROM webhook_events WHERE status = 'failed' AND last_error = 'boom'"
        )
        .await,
        1,
        "not queued again"
    );
}

#[tokio::test]
async fn admin_forms_are_refused_to_signed_in_customers() {
    let app = TestApp::spawn().await;
    admin_and_event(&app).await;
    // Ada posts with her own good token.
    for (action, fields) in [
        (
            "/forms/admin/credits",
            vec![
                ("slug", "acme"),
                ("change", "grant"),
                ("credits", "5"),
                ("reason", "Generous"),
            ],
        ),
        ("/forms/admin/webhooks/replay", vec![("id", "evt_failed")]),
    ] {
        let response = app.submit("/orgs/acme", action, &fields).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{action}");
    }
    assert_eq!(app.count("SELECT count(*) FROM credit_ledger").await, 0);
    assert_eq!(
        app.count("SELECT count(*) FROM webhook_events WHERE status = 'failed'")
            .await,
        1
    );
}

#[tokio::test]
async fn admin_read_functions_refuse_anonymous_callers_and_signed_in_customers() {
    let app = TestApp::spawn().await;
    let admin = admin_and_event(&app).await;
    let anonymous = app.another_browser();
    let read = |client: reqwest::Client,
                endpoint: &'static str,
                args: &'static [(&'static str, &'static str)]| {
        let url = app.url(endpoint);
        async move {
            let response = client
                .post(url)
                .header(reqwest::header::ACCEPT, "application/json")
                .form(args)
                .send()
                .await
                .expect("POST");
            let status = response.status();
            (status, response.text().await.expect("body"))
        }
    };
    let calls: [(&str, &[(&str, &str)]); 4] = [
        ("/forms/read/admin", &[("q", "")]),
        ("/forms/read/admin-org", &[("slug", "acme")]),
        (
            "/forms/read/admin-webhooks",
            &[("kind", ""), ("status", "")],
        ),
        ("/forms/read/admin-webhook", &[("id", "evt_failed")]),
    ];
    for (endpoint, args) in calls {
        let (status, body) = read(anonymous.clone(), endpoint, args).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{endpoint}: {body}");
        assert!(
            !body.contains("ada@example.com")
                && !body.contains("evt_failed")
                && !body.contains("payload"),
            "{body}"
        );
        // A signed-in customer is refused too, and sees none of it.
        let (status, body) = read(app.client.clone(), endpoint, args).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{endpoint}: {body}");
        assert!(
            !body.contains("evt_failed") && !body.contains("payload"),
            "{body}"
        );
        // The admin gets the data.
        let (status, body) = read(admin.clone(), endpoint, args).await;
        assert_eq!(status, StatusCode::OK, "{endpoint}: {body}");
        assert!(
            body.contains("Acme") || body.contains("evt_failed"),
            "{endpoint}: {body}"
        );
    }
}
