//! Feature and seat limits that hold: `GET /api/v1/features/{key}`, gauges set through
//! `PUT /api/v1/gauges/{meter}` and shown in entitlements and on the pages, the member limit on
//! the invite form and on accepting, a plan change refused while over a gauge limit, and the
//! public pricing page to a started trial through sign-up.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::harness::{hidden_fields, location, TestApp, PASSWORD};

const SUBSCRIPTION: &str = "SELECT s.plan_key || ':' || s.status FROM subscriptions s
     JOIN organizations o ON o.id = s.org_id WHERE o.slug = 'acme'";

async fn spawn(catalog: &str) -> TestApp {
    let catalog = format!("plans/{catalog}.toml");
    let app = TestApp::spawn_with(|s| s.plans_file = catalog.into()).await;
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    app
}

impl TestApp {
    /// A new API key of Acme, from its keys page (the secret is shown once).
    async fn limits_key(&self) -> String {
        let created = self
            .submit(
                "/orgs/acme/api-keys",
                "/forms/api-keys/create",
                &[("name", "Product")],
            )
            .await;
        assert_eq!(created.status(), StatusCode::FOUND);
        let html = self.page("/orgs/acme/api-keys").await;
        let at = html
            .find(r#"data-testid="new-api-key""#)
            .unwrap_or_else(|| panic!("the secret is shown: {html}"));
        let start = at + html[at..].find('>').expect("tag end") + 1;
        let end = start + html[start..].find('<').expect("end of secret");
        html[start..end].to_owned()
    }

    async fn page(&self, path: &str) -> String {
        self.get(path).await.text().await.expect("html")
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self.another_browser().request(method, self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.expect("API call");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn feature(&self, key: &str, feature: &str) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::GET,
            &format!("/api/v1/features/{feature}"),
            Some(key),
            None,
        )
        .await
    }

    async fn set_gauge(&self, key: &str, meter: &str, body: &str) -> (StatusCode, Value) {
        self.call(
            reqwest::Method::PUT,
            &format!("/api/v1/gauges/{meter}"),
            Some(key),
            Some(body),
        )
        .await
    }

    async fn stored_gauge(&self, meter: &str) -> Option<i64> {
        sqlx::query_scalar(
            "SELECT g.value FROM gauge_values g JOIN organizations o ON o.id = g.org_id
             WHERE o.slug = 'acme' AND g.meter = $1",
        )
        .bind(meter)
        .fetch_optional(&self.pool)
        .await
        .expect("gauge")
    }

    async fn entitlement(&self, key: &str, meter: &str) -> Value {
        // Entitlements are cached for up to a second; a gauge write drops this instance's entry.
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                "/api/v1/entitlements",
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        body["meters"]
            .as_array()
            .expect("meters")
            .iter()
            .find(|m| m["key"] == meter)
            .cloned()
            .expect("meter")
    }

    /// Puts Acme's subscription in another state by hand (`SET ...`), as if Stripe had said
    /// so, and marks it newer than any event still on its way from the emulator, so a late
    /// webhook does not undo it.
    async fn force_subscription(&self, set: &str) {
        sqlx::query(&format!(
            "UPDATE subscriptions SET {set}, stripe_version = 9000000000000000"
        ))
        .execute(&self.pool)
        .await
        .expect("subscription state");
    }

    async fn subscription(&self) -> String {
        sqlx::query_scalar(SUBSCRIPTION)
            .fetch_optional(&self.pool)
            .await
            .expect("subscription")
            .unwrap_or_default()
    }
}

#[tokio::test]
async fn a_feature_is_allowed_by_the_plan_in_effect_and_refused_with_the_cheapest_upgrade() {
    let app = spawn("features").await;
    let key = app.limits_key().await;

    // Starter (free) has no white-label: 402, the cheapest plan with it, where to upgrade.
    let (status, body) = app.feature(&key, "white_label").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "feature_not_in_plan");
    assert_eq!(error["plan"]["key"], "starter");
    assert_eq!(error["upgrade_to"]["key"], "scale");
    assert_eq!(error["upgrade_to"]["name"], "Scale");
    assert_eq!(error["upgrade_url"], app.url("/orgs/acme/plans"));
    let message = error["message"].as_str().expect("message");
    assert!(
        message.contains("White-label reports") && message.contains("Scale"),
        "{message}"
    );
    let (status, body) = app.feature(&key, "api_access").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["upgrade_to"]["key"], "pro");

    // Unknown to the catalog: 404 in the one error shape.
    for unknown in ["teleport", "white%20label", &"x".repeat(300)] {
        let (status, body) = app.feature(&key, unknown).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{unknown}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    // No key, or a wrong one: 401.
    let (status, body) = app
        .call(
            reqwest::Method::GET,
            "/api/v1/features/white_label",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["error"]["code"].is_string());
    let (status, _) = app.feature("bpk_wrong", "white_label").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A trial of Scale grants everything Scale has, at once.
    let trial = app.start_trial("acme", "scale").await;
    assert_eq!(trial.status(), StatusCode::FOUND);
    assert_eq!(app.subscription().await, "scale:trialing");
    for feature in ["white_label", "api_access", "multi_touch_attribution"] {
        let (status, body) = app.feature(&key, feature).await;
        assert_eq!(status, StatusCode::OK, "{feature}: {body}");
        assert_eq!(body["allowed"], true);
        assert_eq!(body["feature"], feature);
        assert_eq!(body["plan"]["key"], "scale");
    }

    // The grace period after a failed renewal keeps the plan; once it has run out, it is gone.
    app.force_subscription("status = 'past_due', past_due_since = now() - interval '2 days'")
        .await;
    assert_eq!(app.feature(&key, "white_label").await.0, StatusCode::OK);
    app.force_subscription("past_due_since = now() - interval '8 days'")
        .await;
    assert_eq!(
        app.feature(&key, "white_label").await.0,
        StatusCode::PAYMENT_REQUIRED
    );
    app.force_subscription("status = 'canceled', past_due_since = NULL")
        .await;
    let (status, body) = app.feature(&key, "api_access").await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["plan"]["key"], "starter");
}

#[tokio::test]
async fn gauges_go_up_and_down_within_the_plan_limit_and_show_in_entitlements() {
    let app = spawn("seats").await;
    let key = app.limits_key().await;

    let (status, body) = app.set_gauge(&key, "agents", r#"{"value": 1}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"meter": "agents", "name": "Agents", "value": 1, "previous": 0, "limit": 1, "unlimited": false})
    );
    let agents = app.entitlement(&key, "agents").await;
    assert_eq!(agents["gauge"], true);
    assert_eq!(
        (agents["used"].clone(), agents["included"].clone()),
        (json!(1), json!(1))
    );
    assert_eq!(agents["may_act"], false);
    let users = app.entitlement(&key, "users").await;
    assert_eq!(
        (users["gauge"].clone(), users["used"].clone()),
        (json!(true), json!(1))
    );
    let messages = app.entitlement(&key, "messages").await;
    assert_eq!(messages["gauge"], false);

    // Over the Free plan's one agent: 402 with the upgrade, and nothing changes.
    let (status, body) = app.set_gauge(&key, "agents", r#"{"value": 2}"#).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "gauge_limit_reached");
    assert_eq!(error["limit"], 1);
    assert_eq!(error["upgrade_to"]["key"], "starter");
    assert_eq!(error["upgrade_url"], app.url("/orgs/acme/plans"));
    assert!(error["message"]
        .as_str()
        .expect("message")
        .starts_with("Agents are limited to 1 on the Free plan; this would make 2."));
    assert_eq!(app.stored_gauge("agents").await, Some(1));

    // Down again.
    let (status, body) = app.set_gauge(&key, "agents", r#"{"value": 0}"#).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (body["value"].clone(), body["previous"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(app.entitlement(&key, "agents").await["may_act"], true);

    // Bad requests change nothing.
    for (meter, body, code, field) in [
        ("messages", r#"{"value": 1}"#, 422, Some("meter")),
        ("users", r#"{"value": 1}"#, 422, Some("meter")),
        ("robots", r#"{"value": 1}"#, 404, None),
        ("agents", r#"{"value": -1}"#, 422, Some("value")),
        ("agents", r#"{"value": 1.5}"#, 422, Some("value")),
        ("agents", r#"{"value": "1"}"#, 422, Some("value")),
        ("agents", r#"{"value": 1000000000001}"#, 422, Some("value")),
        ("agents", r#"{}"#, 422, Some("value")),
        ("agents", r#"{"value": 1, "extra": true}"#, 422, None),
        ("agents", r#"{"value": "#, 400, None),
    ] {
        let (status, answer) = app.set_gauge(&key, meter, body).await;
        assert_eq!(status.as_u16(), code, "{meter} {body}: {answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{meter} {body}");
        }
    }
    assert_eq!(app.stored_gauge("agents").await, Some(0));
    let (status, _) = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/gauges/agents",
            None,
            Some(r#"{"value": 1}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // A gauge is not recorded as actions.
    let (status, body) = app
        .call(
            reqwest::Method::POST,
            "/api/v1/usage",
            Some(&key),
            Some(r#"{"tier": "agents", "idempotency_key": "a1"}"#),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["error"]["field"], "tier");

    // A trial of Starter raises the limit to five.
    app.start_trial("acme", "starter").await;
    assert_eq!(
        app.set_gauge(&key, "agents", r#"{"value": 5}"#).await.0,
        StatusCode::OK
    );
    let (status, body) = app.set_gauge(&key, "agents", r#"{"value": 6}"#).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(body["error"]["upgrade_to"]["key"], "professional");
    assert_eq!(app.stored_gauge("agents").await, Some(5));

    // The members and API keys pages show the gauges against the limits.
    for page in ["/orgs/acme", "/orgs/acme/api-keys"] {
        let html = app.page(page).await;
        assert!(html.contains("Seats and limits"), "{page}: {html}");
        assert!(
            html.contains(r#"aria-label="Agents in use""#) && html.contains("5 of 5"),
            "{page}"
        );
        assert!(
            html.contains("1 of 3"),
            "{page}: the one member of three seats"
        );
    }
}

#[tokio::test]
async fn the_default_catalog_has_no_gauges_and_shows_none() {
    let app = spawn("hybrid").await;
    let key = app.limits_key().await;
    let (status, body) = app.set_gauge(&key, "small", r#"{"value": 1}"#).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!app.page("/orgs/acme").await.contains("Seats and limits"));
}

#[tokio::test]
async fn the_member_limit_holds_on_the_invite_form_and_when_accepting() {
    let app = spawn("seats").await;
    let owner = app.client.clone();

    // Free allows one user, the owner: the form says so, and no invitation is made.
    let (response, page) = app
        .invite_with(&owner, "acme", "bob@acme.test", "member")
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert!(
        page.contains("Users are limited to 1 on the Free plan; this would make 2.")
            && page.contains("Upgrade to Starter (up to 3 users)")
            && page.contains("/orgs/acme/plans"),
        "{page}"
    );
    assert!(
        page.contains("aria-invalid=\"true\""),
        "the message is on the field"
    );
    assert_eq!(app.count("SELECT count(*) FROM invitations").await, 0);

    // Starter's three seats: the owner and two invitations; a third is refused.
    app.start_trial("acme", "starter").await;
    app.invitation_link(&owner, "acme", "bob@acme.test", "member")
        .await;
    let carol = app
        .invitation_link(&owner, "acme", "carol@acme.test", "member")
        .await;
    // Inviting Bob again replaces his invitation (the first link is revoked) rather than
    // taking another seat.
    let bob = app
        .invitation_link(&owner, "acme", "bob@acme.test", "member")
        .await;
    let (_, page) = app
        .invite_with(&owner, "acme", "dave@acme.test", "member")
        .await;
    assert!(
        page.contains("Users are limited to 3 on the Starter plan; this would make 4.")
            && page.contains("Members and pending invitations both count."),
        "{page}"
    );

    // The plan falls back to Free before they accept: Bob is refused, with the limit named.
    app.force_subscription("status = 'canceled'").await;
    let bobs = app.another_browser();
    app.submit_with(
        &bobs,
        "/signup",
        "/forms/signup",
        &[
            ("email", "bob@acme.test"),
            ("password", PASSWORD),
            ("org_name", "Bob Co"),
        ],
    )
    .await;
    let refused = app.accept_with(&bobs, &bob).await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), bob);
    let page = app.get_with(&bobs, &bob).await.text().await.expect("html");
    assert!(
        page.contains("Acme has no seat left.")
            && page.contains("Users are limited to 1 on the Free plan"),
        "{page}"
    );
    assert_eq!(app.members_of("acme").await, 1);
    assert_eq!(
        app.count("SELECT count(*) FROM invitations WHERE accepted_at IS NOT NULL")
            .await,
        0
    );

    // Back on Starter: Bob and Carol both fit.
    app.force_subscription("status = 'trialing'").await;
    let joined = app.accept_with(&bobs, &bob).await;
    assert_eq!(location(&joined), "/orgs/acme");
    let carols = app.another_browser();
    app.submit_with(
        &carols,
        "/signup",
        "/forms/signup",
        &[
            ("email", "carol@acme.test"),
            ("password", PASSWORD),
            ("org_name", "Carol Co"),
        ],
    )
    .await;
    let joined = app.accept_with(&carols, &carol).await;
    assert_eq!(location(&joined), "/orgs/acme");
    assert_eq!(app.members_of("acme").await, 3);
    assert!(app.page("/orgs/acme").await.contains("3 of 3"));
}

#[tokio::test]
async fn two_people_accepting_the_last_seat_at_once_take_one_seat() {
    let app = spawn("seats").await;
    let owner = app.client.clone();
    app.start_trial("acme", "starter").await;
    let links = [
        app.invitation_link(&owner, "acme", "bob@acme.test", "member")
            .await,
        app.invitation_link(&owner, "acme", "carol@acme.test", "member")
            .await,
    ];
    // A third member added behind the form's back leaves one seat for two invitations.
    sqlx::query(
        "WITH u AS (INSERT INTO users (id, email, password_hash)
                    VALUES (gen_random_uuid(), 'dave@acme.test', 'x') RETURNING id)
         INSERT INTO memberships (user_id, org_id, role)
         SELECT u.id, o.id, 'member' FROM u, organizations o WHERE o.slug = 'acme'",
    )
    .execute(&app.pool)
    .await
    .expect("dave");
    let mut browsers = Vec::new();
    for (email, org) in [("bob@acme.test", "Bob Co"), ("carol@acme.test", "Carol Co")] {
        let browser = app.another_browser();
        app.submit_with(
            &browser,
            "/signup",
            "/forms/signup",
            &[("email", email), ("password", PASSWORD), ("org_name", org)],
        )
        .await;
        browsers.push(browser);
    }
    // Both forms are loaded first, so the two posts race each other and nothing else.
    let mut posts = Vec::new();
    for (browser, link) in browsers.iter().zip(&links) {
        let page = app
            .get_with(browser, link)
            .await
            .text()
            .await
            .expect("html");
        let form = hidden_fields(&page, "/forms/orgs/invitation/accept");
        assert!(form.iter().any(|(name, _)| name == "token"), "{page}");
        posts.push(
            browser
                .post(app.url("/forms/orgs/invitation/accept"))
                .form(&form),
        );
    }
    let second = posts.pop().expect("two posts");
    let first = posts.pop().expect("two posts");
    let (a, b) = tokio::join!(first.send(), second.send());
    let (a, b) = (a.expect("accept"), b.expect("accept"));
    let joined = [location(&a), location(&b)]
        .iter()
        .filter(|l| *l == "/orgs/acme")
        .count();
    assert_eq!(joined, 1);
    assert_eq!(app.members_of("acme").await, 3);
}

#[tokio::test]
async fn a_downgrade_that_would_leave_the_organization_over_a_gauge_limit_is_refused() {
    let app = spawn("seats").await;
    let key = app.limits_key().await;
    app.start_trial("acme", "professional").await;
    assert_eq!(
        app.set_gauge(&key, "agents", r#"{"value": 10}"#).await.0,
        StatusCode::OK
    );

    // The preview sends the manager back to the plans page with the reason.
    let preview = app.get("/orgs/acme/billing/change?plan=starter").await;
    assert_eq!(preview.status(), StatusCode::FOUND);
    assert_eq!(location(&preview), "/orgs/acme/plans");
    let page = app.page("/orgs/acme/plans").await;
    let reason = "Moving to Starter would leave this organization over its limits (Agents 10 of 5). Lower them first, or choose a larger plan.";
    assert!(page.contains(reason), "{page}");

    // Posting the change anyway is refused the same way, and nothing changes in Stripe or here.
    let refused = app
        .submit(
            "/orgs/acme/plans",
            "/forms/billing/change",
            &[("slug", "acme"), ("plan", "starter")],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(location(&refused), "/orgs/acme/plans");
    assert!(app.page("/orgs/acme/plans").await.contains(reason));
    assert_eq!(app.subscription().await, "professional:trialing");

    // Within the limits, the downgrade goes through.
    assert_eq!(
        app.set_gauge(&key, "agents", r#"{"value": 5}"#).await.0,
        StatusCode::OK
    );
    let changed = app
        .submit(
            "/orgs/acme/plans",
            "/forms/billing/change",
            &[("slug", "acme"), ("plan", "starter")],
        )
        .await;
    assert_eq!(location(&changed), "/orgs/acme/billing");
    assert_eq!(app.subscription().await, "starter:trialing");
}

#[tokio::test]
async fn the_pricing_page_lists_the_catalog_and_start_free_trial_leads_to_a_started_trial() {
    let app = TestApp::spawn_with(|s| s.plans_file = "plans/seats.toml".into()).await;
    let home = app.page("/").await;
    assert!(home.contains(r#"href="/pricing""#), "{home}");

    let pricing = app.get("/pricing").await;
    assert_eq!(pricing.status(), StatusCode::OK);
    let html = pricing.text().await.expect("html");
    for text in [
        "<h1>Plans and pricing</h1>",
        "$29.00",
        "per month",
        "Contact sales",
        "7-day free trial",
        r#"<th scope="col">Professional</th>"#,
        r#"<th scope="row">Users (at any time)</th>"#,
        r#"href="/signup?plan=starter""#,
    ] {
        assert!(html.contains(text), "{text} in {html}");
    }
    assert!(!html.contains("/signup?plan=free") && !html.contains("/signup?plan=enterprise"));

    // The sign-up form carries the plan and says what happens.
    let form = app.page("/signup?plan=starter").await;
    assert!(
        form.contains("Your 7-day free trial of Starter starts"),
        "{form}"
    );
    assert!(hidden_fields(&form, "/forms/signup").contains(&("plan".into(), "starter".into())));
    // A plan that is not offered for a trial is not carried.
    for bogus in ["enterprise", "free", "platinum", "<script>"] {
        let form = app.page(&format!("/signup?plan={bogus}")).await;
        assert!(!form.contains("free trial of"), "{bogus}");
        assert!(hidden_fields(&form, "/forms/signup").contains(&("plan".into(), String::new())));
    }

    // Posted by hand, an unoffered plan is refused and creates nothing.
    let refused = app
        .submit(
            "/signup?plan=starter",
            "/forms/signup",
            &[
                ("email", "owner@acme.test"),
                ("password", PASSWORD),
                ("org_name", "Acme"),
                ("plan", "enterprise"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::FOUND);
    assert_eq!(app.count("SELECT count(*) FROM users").await, 0);
    let again = app.page(&location(&refused)).await;
    assert!(
        again.contains("That plan has no trial to start here."),
        "{again}"
    );

    // Signing up from the card: straight into the plan's trial.
    let signed_up = app
        .submit(
            "/signup?plan=starter",
            "/forms/signup",
            &[
                ("email", "owner@acme.test"),
                ("password", PASSWORD),
                ("org_name", "Acme"),
            ],
        )
        .await;
    assert_eq!(signed_up.status(), StatusCode::FOUND);
    assert_eq!(location(&signed_up), "/orgs/acme/billing");
    assert_eq!(app.subscription().await, "starter:trialing");
    let billing = app.page("/orgs/acme/billing").await;
    assert!(
        billing.contains("Welcome! Your 7-day trial of Starter has started for Acme."),
        "{billing}"
    );
}

#[tokio::test]
async fn features_and_gauges_refuse_a_key_without_their_scope_and_change_nothing() {
    let app = spawn("seats").await;
    let usage_only = app.cli_ok(&["api-key", "create", "acme", "--scope", "usage:write"]);
    let reading_only = app.cli_ok(&["api-key", "create", "acme", "--scope", "entitlements:read"]);
    let (usage_only, reading_only) = (usage_only.trim(), reading_only.trim());

    let (status, body) = app.feature(usage_only, "api_access").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "missing_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("entitlements:read"));

    let (status, body) = app
        .set_gauge(reading_only, "agents", r#"{"value": 1}"#)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "missing_scope");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("usage:write"));
    assert_eq!(
        app.count("SELECT count(*) FROM gauge_values").await,
        0,
        "a refused key set nothing"
    );

    // Each key does what its scope allows.
    let (status, body) = app.set_gauge(usage_only, "agents", r#"{"value": 1}"#).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = app.feature(reading_only, "api_access").await;
    assert_ne!(status, StatusCode::FORBIDDEN);
}
