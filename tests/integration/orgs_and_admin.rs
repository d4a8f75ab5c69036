//! Organizations seen through memberships, switching between them, inviting members, and the
//! platform admin pages.

use reqwest::header::{ACCEPT, CONTENT_TYPE};
use reqwest::StatusCode;

use crate::harness::{assert_forgery_refused, authenticity_token, location, TestApp, PASSWORD};

#[tokio::test]
async fn a_member_of_one_org_gets_404_for_another_orgs_pages() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Org A").await;
    let bob = app.another_browser();
    let response = app
        .submit_with(
            &bob,
            "/signup",
            "/forms/signup",
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

    // Nor can she invite herself into it, nor revoke its invitations.
    let response = app
        .submit(
            "/orgs/org-a",
            "/forms/orgs/invite",
            &[
                ("slug", "org-b"),
                ("email", "ada@example.com"),
                ("role", "owner"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.count("SELECT count(*) FROM memberships m JOIN organizations o ON o.id = m.org_id WHERE o.slug = 'org-b'")
            .await,
        1
    );
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 0);
    let id = uuid::Uuid::new_v4().to_string();
    let response = app
        .submit(
            "/orgs/org-a",
            "/forms/orgs/invitation/revoke",
            &[("slug", "org-b"), ("id", &id)],
        )
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_user_can_create_and_switch_between_organizations() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let response = app
        .submit("/orgs/new", "/forms/orgs/create", &[("name", "Acme")])
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    // The name is taken as a slug, so the second one gets a suffix.
    let second = location(&response);
    assert!(
        second.starts_with("/orgs/acme-") && second.len() == "/orgs/acme-".len() + 6,
        "{second}"
    );

    let html = app.follow(&response).await.text().await.expect("body");
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
    let long = "n".repeat(101);
    let response = app
        .submit("/orgs/new", "/forms/orgs/create", &[("name", &long)])
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/orgs/new");
    let html = app.follow(&response).await.text().await.expect("body");
    assert!(html.contains("at most 100 characters"));
    assert!(
        html.contains(&format!("value=\"{long}\"")),
        "the typed name is kept"
    );
    assert!(html.contains("aria-invalid=\"true\""));
    assert_eq!(app.count("SELECT count(*) FROM organizations").await, 1);
    // Shown once: a reload is a clean form.
    let again = app.get("/orgs/new").await.text().await.expect("body");
    assert!(!again.contains("at most 100 characters"));
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

    // The page's title too, where a name could end the element.
    let created = app
        .submit(
            "/orgs/new",
            "/forms/orgs/create",
            &[("name", "</title><script>alert(2)</script>")],
        )
        .await;
    let page = app.follow(&created).await.text().await.expect("body");
    assert!(!page.contains("<script>alert(2)"), "{page}");
    assert!(page.contains(
        "<title>&lt;/title&gt;&lt;script&gt;alert(2)&lt;/script&gt; · Billing portal</title>"
    ));
}

#[tokio::test]
async fn owners_invite_people_who_join_by_accepting_and_members_cannot_invite() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@example.com", "Bob's").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    let (bad_role, page) = app
        .invite_with(&app.client, "acme", "bob@example.com", "root")
        .await;
    assert_eq!(bad_role.status(), StatusCode::FOUND);
    assert_eq!(location(&bad_role), "/orgs/acme");
    assert!(page.contains("is not a role"), "{page}");
    assert!(
        page.contains("value=\"bob@example.com\""),
        "the typed address is kept"
    );
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 0);

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

    let (again, page) = app
        .invite_with(&app.client, "acme", "bob@example.com", "admin")
        .await;
    assert_eq!(again.status(), StatusCode::FOUND);
    assert!(page.contains("already a member"), "{page}");
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 1);

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
    let (refused, _) = app
        .invite_with(&bob, "acme", "carol@example.com", "member")
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT count(*) FROM memberships").await, 3);
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 1);
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

type Fields<'a> = Vec<(&'a str, &'a str)>;

/// Every organization and invitation form, posted with no anti-forgery token and with another
/// session's, is refused with 403 before it does anything.
#[tokio::test]
async fn organization_forms_refuse_a_missing_or_foreign_anti_forgery_token() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@example.com", "Bobs").await;
    let mallory = app.person("mallory@example.com", "Mallorys").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let link = app
        .invitation_link(&app.client, "acme", "bob@example.com", "member")
        .await;
    let token = link.trim_start_matches("/invitations/").to_owned();
    let id: String = sqlx::query_scalar("SELECT id::text FROM invitations")
        .fetch_one(&app.pool)
        .await
        .expect("invitation");
    // A token that is valid, for Mallory's session.
    let foreign = authenticity_token(
        &app.get_with(&mallory, "/orgs/mallorys")
            .await
            .text()
            .await
            .expect("body"),
    );
    let state = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT (SELECT count(*) FROM organizations) || ' ' || (SELECT count(*) FROM memberships)
                 || ' ' || (SELECT count(*) FROM invitations)
                 || ' ' || (SELECT count(*) FROM invitations WHERE revoked_at IS NOT NULL)
                 || ' ' || (SELECT count(*) FROM invitations WHERE accepted_at IS NOT NULL)",
        )
        .fetch_one(&app.pool)
        .await
        .expect("state")
    };
    let before = state().await;
    let forms: [(&reqwest::Client, &str, Fields); 4] = [
        (&app.client, "/forms/orgs/create", vec![("name", "Forged")]),
        (
            &app.client,
            "/forms/orgs/invite",
            vec![
                ("slug", "acme"),
                ("email", "eve@example.com"),
                ("role", "owner"),
            ],
        ),
        (
            &app.client,
            "/forms/orgs/invitation/revoke",
            vec![("slug", "acme"), ("id", &id)],
        ),
        (
            &bob,
            "/forms/orgs/invitation/accept",
            vec![("token", &token)],
        ),
    ];
    for (browser, action, fields) in forms {
        for sent in [None, Some(foreign.as_str())] {
            let mut form = fields.clone();
            if let Some(sent) = sent {
                form.push(("authenticity_token", sent));
            }
            let what = format!("{action} with token {sent:?}");
            assert_forgery_refused(browser, app.url(action), &form, &what).await;
        }
    }
    assert_eq!(state().await, before, "nothing written");
    assert_eq!(app.members_of("acme").await, 1);
    // The link still works with the real form.
    let accepted = app.accept_with(&bob, &link).await;
    assert_eq!(location(&accepted), "/orgs/acme");
}

/// The organization pages' read functions, called directly as a script would, give nothing to
/// someone signed out or outside the organization.
#[tokio::test]
async fn organization_read_functions_refuse_strangers() {
    let app = TestApp::spawn().await;
    let mallory = app.person("mallory@example.com", "Mallorys").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let link = app
        .invitation_link(&app.client, "acme", "bob@example.com", "member")
        .await;
    let token = link.trim_start_matches("/invitations/").to_owned();
    let read = |browser: &reqwest::Client, endpoint: &str, body: String| {
        browser
            .post(app.url(&format!("/forms/read/{endpoint}")))
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let anonymous = app.another_browser();
    for (who, browser, expected) in [
        ("anonymous", &anonymous, StatusCode::UNAUTHORIZED),
        ("an outsider", &mallory, StatusCode::NOT_FOUND),
    ] {
        let response = read(browser, "org", "slug=acme".into())
            .await
            .expect("POST");
        assert_eq!(response.status(), expected, "{who}");
        let body = response.text().await.expect("body");
        assert!(
            !body.contains("ada@example.com") && !body.contains("Acme"),
            "{who} got {body}"
        );
    }
    let response = read(&anonymous, "new-org", String::new())
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // An invitation is read with its token only; a made-up one finds nothing.
    for browser in [&anonymous, &mallory] {
        let response = read(browser, "invitation", "token=not-a-real-token".into())
            .await
            .expect("POST");
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    // The same calls answer the people they are for.
    let own = read(&app.client, "org", "slug=acme".into())
        .await
        .expect("POST");
    assert_eq!(own.status(), StatusCode::OK);
    assert!(own.text().await.expect("body").contains("ada@example.com"));
    let invited = read(&anonymous, "invitation", format!("token={token}"))
        .await
        .expect("POST");
    assert_eq!(invited.status(), StatusCode::OK);
    assert!(invited.text().await.expect("body").contains("Acme"));
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
            let what = format!("{action} {token:?}");
            assert_forgery_refused(&admin, app.url(action), &form, &what).await;
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
