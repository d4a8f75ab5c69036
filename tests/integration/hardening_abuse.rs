//! Abuse and consent: invitations instead of adding people without asking, e-mail addresses that
//! fold the same everywhere, throttles on sign-up, new organizations, trials and logins, and
//! parallel trial starts and credit checkouts that end cleanly.

use std::time::Duration;

use reqwest::StatusCode;

use crate::harness::{assert_throttled, authenticity_token, location, TestApp, PASSWORD};

impl TestApp {
    /// Signs up `email` with their own organization `org` in a new browser.
    pub(crate) async fn person(&self, email: &str, org: &str) -> reqwest::Client {
        let browser = self.another_browser();
        let response = self
            .submit_with(
                &browser,
                "/signup",
                "/forms/signup",
                &[("email", email), ("password", PASSWORD), ("org_name", org)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "{email} signs up");
        browser
    }

    /// Invites `email` as `role` from `browser` and returns the answer and, when it redirects
    /// (done, or refused with a message), the page it leads to.
    pub(crate) async fn invite_with(
        &self,
        browser: &reqwest::Client,
        slug: &str,
        email: &str,
        role: &str,
    ) -> (reqwest::Response, String) {
        let response = self
            .submit_with(
                browser,
                &format!("/orgs/{slug}"),
                "/forms/orgs/invite",
                &[("slug", slug), ("email", email), ("role", role)],
            )
            .await;
        let page = if response.status() == StatusCode::FOUND {
            self.get_with(browser, &location(&response))
                .await
                .text()
                .await
                .expect("html")
        } else {
            String::new()
        };
        (response, page)
    }

    /// Invites and returns the invitation's path (`/invitations/<token>`), shown once.
    pub(crate) async fn invitation_link(
        &self,
        browser: &reqwest::Client,
        slug: &str,
        email: &str,
        role: &str,
    ) -> String {
        let (response, page) = self.invite_with(browser, slug, email, role).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{page}");
        invitation_path(&page).unwrap_or_else(|| panic!("no invitation link in:\n{page}"))
    }

    pub(crate) async fn members_of(&self, slug: &str) -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM memberships m JOIN organizations o ON o.id = m.org_id
             WHERE o.slug = $1",
        )
        .bind(slug)
        .fetch_one(&self.pool)
        .await
        .expect("count")
    }

    /// Accepts the invitation at `link` (`/invitations/<token>`) from `browser`.
    pub(crate) async fn accept_with(
        &self,
        browser: &reqwest::Client,
        link: &str,
    ) -> reqwest::Response {
        // The token is sent even when the page has no accept button (used, revoked, another
        // account), as someone posting by hand would.
        let token = link.trim_start_matches("/invitations/");
        self.submit_with(
            browser,
            link,
            "/forms/orgs/invitation/accept",
            &[("token", token)],
        )
        .await
    }
}

/// The path of the invitation link shown once in a page.
fn invitation_path(html: &str) -> Option<String> {
    let shown = html.find("data-testid=\"invitation-link\"")?;
    let start = html[shown..].find("/invitations/")? + shown;
    let token: String = html[start + "/invitations/".len()..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!token.is_empty()).then(|| format!("/invitations/{token}"))
}

// ---- Invitations ----

#[tokio::test]
async fn nobody_becomes_a_member_without_accepting_and_accepting_twice_adds_them_once() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@example.com", "Bobs").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    // The old form that added an existing account at once is gone.
    let direct = app
        .submit(
            "/orgs/acme",
            "/orgs/acme/members",
            &[("email", "bob@example.com"), ("role", "owner")],
        )
        .await;
    assert!(
        matches!(
            direct.status(),
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
        ),
        "{}",
        direct.status()
    );
    assert_eq!(app.members_of("acme").await, 1);

    let link = app
        .invitation_link(&app.client, "acme", "bob@example.com", "admin")
        .await;
    // Invited is not a member: Bob still gets the 404 of a stranger.
    assert_eq!(app.members_of("acme").await, 1);
    assert_eq!(
        app.get_with(&bob, "/orgs/acme").await.status(),
        StatusCode::NOT_FOUND
    );
    // The owner sees the pending invitation.
    let org = app.get("/orgs/acme").await.text().await.expect("html");
    assert!(org.contains("Pending invitations") && org.contains("bob@example.com"));

    let page = app.get_with(&bob, &link).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(html.contains("Acme") && html.contains("admin"), "{html}");
    assert!(html.contains("Accept invitation"), "{html}");

    let accepted = app.accept_with(&bob, &link).await;
    assert_eq!(accepted.status(), StatusCode::FOUND);
    assert_eq!(location(&accepted), "/orgs/acme");
    let org = app
        .get_with(&bob, "/orgs/acme")
        .await
        .text()
        .await
        .expect("html");
    assert!(org.contains("<strong>admin</strong>"), "{org}");
    assert_eq!(app.members_of("acme").await, 2);

    // Accepting again (a double click, a reload) changes nothing.
    let again = app.accept_with(&bob, &link).await;
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(location(&again), "/orgs/acme");
    assert_eq!(app.members_of("acme").await, 2);
}

#[tokio::test]
async fn members_cannot_invite_and_admins_cannot_invite_owners() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@example.com", "Bobs").await;
    let carol = app.person("carol@example.com", "Carols").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let link = app
        .invitation_link(&app.client, "acme", "bob@example.com", "member")
        .await;
    app.accept_with(&bob, &link).await;
    let link = app
        .invitation_link(&app.client, "acme", "carol@example.com", "admin")
        .await;
    app.accept_with(&carol, &link).await;
    assert_eq!(app.members_of("acme").await, 3);
    let before = app.count("SELECT count(*) FROM invitations").await;

    // Bob, a member, has no form and is refused when he posts anyway.
    let page = app
        .get_with(&bob, "/orgs/acme")
        .await
        .text()
        .await
        .expect("html");
    assert!(!page.contains("Invite someone"));
    let (refused, _) = app
        .invite_with(&bob, "acme", "mallory@example.com", "member")
        .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // Carol, an admin, may invite members but not owners.
    let (owner, page) = app
        .invite_with(&carol, "acme", "mallory@example.com", "owner")
        .await;
    assert_eq!(owner.status(), StatusCode::FOUND);
    assert_eq!(location(&owner), "/orgs/acme");
    assert!(page.contains("you cannot make someone owner"), "{page}");
    assert!(page.contains("value=\"mallory@example.com\""), "{page}");
    assert_eq!(
        app.count("SELECT count(*) FROM invitations").await,
        before,
        "no invitation stored"
    );
    let (member, page) = app
        .invite_with(&carol, "acme", "mallory@example.com", "member")
        .await;
    assert_eq!(member.status(), StatusCode::FOUND);
    assert!(page.contains("an invitation was sent"), "{page}");
    assert_eq!(
        app.count("SELECT count(*) FROM invitations").await,
        before + 1
    );
}

#[tokio::test]
async fn the_answer_is_the_same_for_an_existing_and_an_unknown_address() {
    let app = TestApp::spawn().await;
    app.person("bob@example.com", "Bobs").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    let (known, known_page) = app
        .invite_with(&app.client, "acme", "bob@example.com", "member")
        .await;
    let (unknown, unknown_page) = app
        .invite_with(&app.client, "acme", "nobody@example.com", "member")
        .await;
    assert_eq!(known.status(), StatusCode::FOUND);
    assert_eq!(known.status(), unknown.status());
    assert_eq!(location(&known), location(&unknown));
    let notice = |page: &str, email: &str| {
        let start = page.find("If ").expect("notice");
        let end = page[start..].find('<').expect("end") + start;
        page[start..end].replace(email, "EMAIL")
    };
    assert_eq!(
        notice(&known_page, "bob@example.com"),
        notice(&unknown_page, "nobody@example.com")
    );
    assert!(known_page.contains("an invitation was sent"));
    assert!(invitation_path(&known_page).is_some() && invitation_path(&unknown_page).is_some());
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 2);
    assert_eq!(app.members_of("acme").await, 1);
    // The link is shown once: reloading the page does not show it again.
    let reloaded = app.get("/orgs/acme").await.text().await.expect("html");
    assert!(reloaded.contains("Pending invitations"));
    assert!(invitation_path(&reloaded).is_none());
}

#[tokio::test]
async fn revoked_and_expired_invitations_are_refused() {
    let app = TestApp::spawn().await;
    let bob = app.person("bob@example.com", "Bobs").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;

    let revoked = app
        .invitation_link(&app.client, "acme", "bob@example.com", "member")
        .await;
    let page = app.get("/orgs/acme").await.text().await.expect("html");
    let form = page
        .find("/revoke\"")
        .map(|end| {
            let start = page[..end].rfind("action=\"").expect("action") + "action=\"".len();
            format!("{}/revoke", &page[start..end])
        })
        .expect("a revoke button");
    assert_eq!(form, "/forms/orgs/invitation/revoke");
    let response = app.submit("/orgs/acme", &form, &[]).await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(location(&response), "/orgs/acme");
    let page = app.follow(&response).await.text().await.expect("html");
    assert!(page.contains("The invitation for bob@example.com was revoked."));
    let refused = app.accept_with(&bob, &revoked).await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), revoked, "back to the invitation");
    let page = app.follow_with(&bob, &refused).await;
    assert_eq!(page.status(), StatusCode::GONE);
    let html = page.text().await.expect("html");
    assert!(html.contains("was revoked") && !html.contains("Accept invitation"));
    assert_eq!(app.members_of("acme").await, 1);

    let expired = app
        .invitation_link(&app.client, "acme", "bob@example.com", "member")
        .await;
    sqlx::query(
        "UPDATE invitations SET expires_at = now() - interval '1 minute' WHERE revoked_at IS NULL",
    )
    .execute(&app.pool)
    .await
    .expect("expire");
    let page = app.get_with(&bob, &expired).await;
    assert_eq!(page.status(), StatusCode::GONE);
    let page = page.text().await.expect("html");
    assert!(page.contains("has expired") && !page.contains("Accept invitation"));
    let refused = app.accept_with(&bob, &expired).await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), expired);
    let page = app.follow_with(&bob, &refused).await;
    assert_eq!(page.status(), StatusCode::GONE);
    assert!(page.text().await.expect("html").contains("has expired"));
    assert_eq!(app.members_of("acme").await, 1);

    // A made-up token is simply not found.
    assert_eq!(
        app.get_with(&bob, "/invitations/not-a-real-token")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn the_wrong_account_cannot_accept() {
    let app = TestApp::spawn().await;
    let mallory = app.person("mallory@example.com", "Mallorys").await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let link = app
        .invitation_link(&app.client, "acme", "bob@example.com", "owner")
        .await;

    let page = app
        .get_with(&mallory, &link)
        .await
        .text()
        .await
        .expect("html");
    assert!(!page.contains("Accept invitation"));
    assert!(page.contains("another e-mail address"), "{page}");
    let refused = app.accept_with(&mallory, &link).await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), link);
    let page = app
        .follow_with(&mallory, &refused)
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("another e-mail address"), "{page}");
    assert!(
        !page.contains("bob@example.com"),
        "the invited address is not shown"
    );
    assert_eq!(app.members_of("acme").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM invitations WHERE accepted_at IS NOT NULL")
            .await,
        0
    );
}

#[tokio::test]
async fn an_invited_person_signs_up_through_the_link_and_accepts() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    let link = app
        .invitation_link(&app.client, "acme", "Carol@Example.com", "member")
        .await;

    let carol = app.another_browser();
    let page = app
        .get_with(&carol, &link)
        .await
        .text()
        .await
        .expect("html");
    let next = format!("next={link}");
    assert!(
        page.contains(&format!("/signup?{next}")) && page.contains(&format!("/login?{next}")),
        "{page}"
    );

    let form = app
        .get_with(&carol, &format!("/signup?{next}"))
        .await
        .text()
        .await
        .expect("html");
    assert!(
        form.contains(&format!("name=\"next\" value=\"{link}\"")),
        "{form}"
    );
    let token = authenticity_token(&form);
    let signed_up = carol
        .post(app.url("/forms/signup"))
        .form(&[
            ("authenticity_token", token.as_str()),
            ("email", "carol@example.com"),
            ("password", PASSWORD),
            ("org_name", "Carols"),
            ("next", link.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(signed_up.status(), StatusCode::FOUND);
    assert_eq!(location(&signed_up), link);
    let page = app
        .follow_with(&carol, &signed_up)
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("Accept invitation"), "{page}");
    let accepted = app.accept_with(&carol, &link).await;
    assert_eq!(location(&accepted), "/orgs/acme");
    assert_eq!(app.members_of("acme").await, 2);
}

#[tokio::test]
async fn invitations_are_rate_limited_per_inviter() {
    let app = TestApp::spawn_with(|s| s.invitations_per_hour = 2).await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    for n in 0..2 {
        let (ok, _) = app
            .invite_with(&app.client, "acme", &format!("p{n}@example.com"), "member")
            .await;
        assert_eq!(ok.status(), StatusCode::FOUND);
    }
    let (refused, _) = app
        .invite_with(&app.client, "acme", "p3@example.com", "member")
        .await;
    assert_throttled(refused, "Too many invitations").await;
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 2);
}

// ---- E-mail addresses fold the same everywhere ----

#[tokio::test]
async fn a_non_ascii_address_logs_in_whatever_its_case_and_is_unique() {
    let app = TestApp::spawn().await;
    app.sign_up("ÄDA@example.com", PASSWORD, "Acme").await;
    app.log_out().await;
    for typed in ["äda@example.com", "ÄDA@example.com", "Äda@Example.COM"] {
        let browser = app.another_browser();
        let response = app.log_in_with(&browser, typed, PASSWORD).await;
        assert_eq!(response.status(), StatusCode::FOUND, "{typed} logs in");
    }
    let other = app.another_browser();
    let again = app
        .submit_with(
            &other,
            "/signup",
            "/forms/signup",
            &[
                ("email", "äda@example.com"),
                ("password", PASSWORD),
                ("org_name", "Copy"),
            ],
        )
        .await;
    assert_eq!(again.status(), StatusCode::FOUND);
    assert_eq!(location(&again), "/signup");
    let page = app.follow_with(&other, &again).await;
    assert!(page.text().await.expect("html").contains("already exists"));
    assert_eq!(app.count("SELECT count(*) FROM users").await, 1);
    let stored: String = sqlx::query_scalar("SELECT email FROM users")
        .fetch_one(&app.pool)
        .await
        .expect("email");
    assert_eq!(stored, "äda@example.com");
}

#[tokio::test]
async fn stored_addresses_from_before_are_normalized_unless_they_would_collide() {
    let app = TestApp::spawn().await;
    app.sign_up("äda@example.com", PASSWORD, "Acme").await;
    // Rows as the old code stored them (as typed; the old index folded only ASCII).
    for email in ["ÖSTRÖM@example.com", "ÄDA@example.com"] {
        sqlx::query(
            "INSERT INTO users (id, email, password_hash) VALUES (gen_random_uuid(), $1, 'x')",
        )
        .bind(email)
        .execute(&app.pool)
        .await
        .expect("old row");
    }
    let changed = billing_portal::accounts::repo::normalize_stored_emails(&app.pool)
        .await
        .expect("normalize");
    assert_eq!(changed, 1);
    let stored: Vec<String> = sqlx::query_scalar("SELECT email FROM users ORDER BY email")
        .fetch_all(&app.pool)
        .await
        .expect("emails");
    // The colliding one is left for an operator; the other is normalized.
    assert_eq!(
        stored,
        ["ÄDA@example.com", "äda@example.com", "öström@example.com"]
    );
}

// ---- Throttles ----

#[tokio::test]
async fn sign_ups_are_limited_per_client_address() {
    let app = TestApp::spawn_with(|s| s.signups_per_ip_per_hour = 2).await;
    app.person("a@example.com", "A").await;
    app.person("b@example.com", "B").await;
    let browser = app.another_browser();
    let refused = app
        .submit_with(
            &browser,
            "/signup",
            "/forms/signup",
            &[
                ("email", "c@example.com"),
                ("password", PASSWORD),
                ("org_name", "C"),
            ],
        )
        .await;
    assert_throttled(refused, "Too many sign-ups").await;
    assert_eq!(app.count("SELECT count(*) FROM users").await, 2);
    // Another address may still sign up.
    let elsewhere = app.browser_from([127, 0, 0, 2]);
    let ok = app
        .submit_with(
            &elsewhere,
            "/signup",
            "/forms/signup",
            &[
                ("email", "c@example.com"),
                ("password", PASSWORD),
                ("org_name", "C"),
            ],
        )
        .await;
    assert_eq!(ok.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn new_organizations_are_limited_per_account() {
    let app = TestApp::spawn_with(|s| s.orgs_per_account_per_day = 2).await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    for name in ["Two", "Three"] {
        let ok = app
            .submit("/orgs/new", "/forms/orgs/create", &[("name", name)])
            .await;
        assert_eq!(ok.status(), StatusCode::FOUND);
    }
    let refused = app
        .submit("/orgs/new", "/forms/orgs/create", &[("name", "Four")])
        .await;
    assert_throttled(refused, "Too many new organizations").await;
    assert_eq!(app.count("SELECT count(*) FROM organizations").await, 3);
}

#[tokio::test]
async fn one_person_gets_one_trial_across_organizations() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    app.stripe_ready().await;
    let first = app.start_trial("acme", "pro").await;
    assert_eq!(first.status(), StatusCode::FOUND);
    assert_eq!(location(&first), "/orgs/acme/billing");
    let created = app
        .submit("/orgs/new", "/forms/orgs/create", &[("name", "Second")])
        .await;
    assert_eq!(location(&created), "/orgs/second");
    let plans = app
        .get("/orgs/second/plans")
        .await
        .text()
        .await
        .expect("html");
    assert!(!plans.contains("Start 7-day trial"), "not offered again");
    let refused = app.start_trial("second", "pro").await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), "/orgs/second/plans");
    let page = app.follow(&refused).await.text().await.expect("html");
    assert!(page.contains("You have already had a trial"), "{page}");
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 1);
}

#[tokio::test]
async fn the_owner_still_logs_in_while_an_attacker_hammers_from_another_address() {
    let app = TestApp::spawn().await;
    app.sign_up("ada@example.com", PASSWORD, "Acme").await;
    app.log_out().await;

    let attacker = app.browser_from([127, 0, 0, 3]);
    let mut throttled = false;
    for _ in 0..12 {
        let response = app
            .log_in_with(&attacker, "ada@example.com", "wrong password!")
            .await;
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            throttled = true;
        }
    }
    assert!(throttled, "the attacker is slowed down");
    // The attacker's right guess is refused too while they are throttled.
    let guessed = app
        .log_in_with(&attacker, "ada@example.com", PASSWORD)
        .await;
    assert_eq!(guessed.status(), StatusCode::TOO_MANY_REQUESTS);

    let owner = app.another_browser();
    let response = app.log_in_with(&owner, "ada@example.com", PASSWORD).await;
    assert_eq!(response.status(), StatusCode::FOUND, "the owner gets in");
}

// ---- Races ----

#[tokio::test]
async fn two_parallel_trial_starts_give_one_trial_and_one_clean_refusal() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    app.stripe_ready().await;
    let page = app
        .get("/orgs/acme/plans")
        .await
        .text()
        .await
        .expect("html");
    let token = authenticity_token(&page);
    let mut tasks = Vec::new();
    for plan in ["pro", "max"] {
        let client = app.client.clone();
        let url = app.url("/forms/billing/trial");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .form(&[
                    ("authenticity_token", token.as_str()),
                    ("slug", "acme"),
                    ("plan", plan),
                ])
                .send()
                .await
                .expect("POST");
            (response.status(), location(&response))
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    answers.sort_by(|a, b| a.1.cmp(&b.1));
    assert!(
        answers.iter().all(|(s, _)| *s == StatusCode::FOUND),
        "{answers:?}"
    );
    assert_eq!(answers[0].1, "/orgs/acme/billing", "{answers:?}");
    assert_eq!(answers[1].1, "/orgs/acme/plans", "{answers:?}");
    assert_eq!(app.count("SELECT count(*) FROM subscriptions").await, 1);
    let in_stripe = app
        .count("SELECT count(*) FROM stripe_emulator.objects WHERE kind = 'subscription'")
        .await;
    assert_eq!(in_stripe, 1);
}

#[tokio::test]
async fn ten_parallel_credit_checkouts_leave_one_pending_purchase_and_one_open_session() {
    let app = TestApp::spawn().await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    app.stripe_ready().await;
    let page = app
        .get("/orgs/acme/credits")
        .await
        .text()
        .await
        .expect("html");
    let token = authenticity_token(&page);
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let client = app.client.clone();
        let url = app.url("/forms/credits/checkout");
        let token = token.clone();
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .form(&[
                    ("authenticity_token", token.as_str()),
                    ("slug", "acme"),
                    ("packs", "1"),
                ])
                .send()
                .await
                .expect("POST");
            (response.status(), location(&response))
        }));
    }
    let mut targets = Vec::new();
    for task in tasks {
        let (status, target) = task.await.expect("task");
        assert_eq!(status, StatusCode::FOUND);
        targets.push(target);
    }
    targets.sort();
    targets.dedup();
    assert_eq!(
        targets.len(),
        1,
        "everyone is sent to the same Checkout: {targets:?}"
    );
    // Stripe's (the emulator's) objects are written before it answers; give nothing time to lag.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        app.count("SELECT count(*) FROM credit_purchases WHERE status = 'pending'")
            .await,
        1
    );
    assert_eq!(
        app.count(
            "SELECT count(*) FROM stripe_emulator.objects
             WHERE kind = 'checkout.session' AND data ->> 'status' = 'open'"
        )
        .await,
        1
    );
}

#[tokio::test]
async fn a_card_that_already_had_a_trial_ends_the_next_trial_it_is_added_to() {
    let app = TestApp::spawn().await;
    app.signed_up_owner().await;
    app.start_trial("acme", "pro").await;
    app.change_card("4242 4242 4242 4242").await;

    // Another person, another organization, the same card.
    let beta = app.person("beta@beta.test", "Beta").await;
    let started = app
        .submit_with(
            &beta,
            "/orgs/beta/plans",
            "/forms/billing/trial",
            &[("slug", "beta"), ("plan", "pro")],
        )
        .await;
    assert_eq!(started.status(), StatusCode::FOUND);
    assert_eq!(location(&started), "/orgs/beta/billing");
    app.card_through_portal(&beta, "beta", "4242 4242 4242 4242")
        .await;

    // The background check (run here at once rather than waiting for its minute).
    let gateway = app.gateway();
    let catalog = crate::harness::hybrid_catalog();
    billing_portal::billing::service::check_trial_cards(
        &app.pool,
        &gateway,
        &catalog,
        chrono::Utc::now(),
    )
    .await
    .expect("check");

    let status = |slug: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(
                "SELECT s.status FROM subscriptions s JOIN organizations o ON o.id = s.org_id
                 WHERE o.slug = $1",
            )
            .bind(slug)
            .fetch_one(&pool)
            .await
            .expect("status")
        }
    };
    assert_eq!(
        status("acme").await,
        "trialing",
        "the first trial keeps going"
    );
    assert_eq!(
        status("beta").await,
        "canceled",
        "the reused card's trial ended"
    );
    let page = app
        .get_with(&beta, "/orgs/beta/billing")
        .await
        .text()
        .await
        .expect("html");
    assert!(page.contains("Free plan"), "{page}");

    // A third organization that puts the same card on file first is refused the trial outright.
    let gamma = app.person("gamma@gamma.test", "Gamma").await;
    app.card_through_portal(&gamma, "gamma", "4242 4242 4242 4242")
        .await;
    let refused = app
        .submit_with(
            &gamma,
            "/orgs/gamma/plans",
            "/forms/billing/trial",
            &[("slug", "gamma"), ("plan", "pro")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), "/orgs/gamma/plans");
    let page = app
        .follow_with(&gamma, &refused)
        .await
        .text()
        .await
        .expect("html");
    assert!(
        page.contains("The card on file has already been used for a trial"),
        "{page}"
    );
    assert_eq!(
        app.count("SELECT count(*) FROM trial_grants").await,
        2,
        "no grant for Gamma"
    );
}

impl TestApp {
    /// Puts `card` on file for `slug` through Stripe's customer portal, from `browser`.
    async fn card_through_portal(&self, browser: &reqwest::Client, slug: &str, card: &str) {
        let portal = self
            .submit_with(
                browser,
                &format!("/orgs/{slug}/billing"),
                "/forms/billing/portal",
                &[("slug", slug)],
            )
            .await;
        assert_eq!(portal.status(), StatusCode::FOUND);
        let changed = self
            .another_browser()
            .post(format!("{}/card", location(&portal)))
            .form(&[
                ("card_number", card),
                ("card_expiry", "12/34"),
                ("card_cvc", "123"),
            ])
            .send()
            .await
            .expect("change card");
        assert_eq!(changed.status(), StatusCode::SEE_OTHER);
    }
}
