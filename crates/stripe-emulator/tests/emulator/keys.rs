//! The emulator is locked like Stripe: only its configured keys open the API, its controls and
//! its webhook endpoints; URLs handed to it must be absolute http(s) URLs; its hosted pages send
//! a content policy and never render a link that fails that check; nothing but the emulator is
//! served on its address.

use reqwest::Method;
use serde_json::Value;

use super::api::monthly_price;
use super::TestEmulator;

/// A form body: Stripe's bracket-notation parameters.
type Form<'a> = Vec<(&'a str, &'a str)>;

/// A snapshot of everything a refused call could have changed.
async fn state(emu: &TestEmulator) -> (i64, i64, i64, i64, String) {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(&emu.pool)
            .await
            .expect("count")
    };
    let settings: String = sqlx::query_scalar(
        "SELECT clock_offset_secs::text || '/' || chaos::text FROM stripe_emulator.settings",
    )
    .fetch_one(&emu.pool)
    .await
    .expect("settings");
    (
        count("SELECT count(*) FROM stripe_emulator.objects").await,
        count("SELECT count(*) FROM stripe_emulator.webhook_endpoints").await,
        count("SELECT count(*) FROM stripe_emulator.idempotency").await,
        count("SELECT count(*) FROM stripe_emulator.deliveries").await,
        settings
            + &sqlx::query_scalar::<_, String>(
                "SELECT coalesce(string_agg(url || '=' || secret, ','), '')
                 FROM stripe_emulator.webhook_endpoints",
            )
            .fetch_one(&emu.pool)
            .await
            .expect("endpoints"),
    )
}

/// One call with `auth` as the Authorization header (none when `None`).
async fn call(
    emu: &TestEmulator,
    method: Method,
    path: &str,
    form: &[(&str, &str)],
    auth: Option<&str>,
) -> reqwest::Response {
    let mut request = emu
        .http
        .request(method.clone(), format!("{}{path}", emu.base));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    request = if method == Method::GET {
        request.query(form)
    } else {
        request.form(form)
    };
    request.send().await.expect("request")
}

#[tokio::test]
async fn calls_without_the_configured_key_are_refused_and_change_nothing() {
    let emu = TestEmulator::start().await;
    // Something to attack: a customer with a subscription, and an endpoint with a secret.
    let receiver = super::Receiver::start(0).await;
    emu.listen(&receiver).await;
    let price = monthly_price(&emu, "Pro", 9900, "pro_monthly").await;
    let customer = emu
        .raw(
            Method::POST,
            "/v1/customers",
            &[("email", "victim@acme.test")],
        )
        .await
        .json::<Value>()
        .await
        .expect("customer");
    let customer = customer["id"].as_str().expect("id").to_owned();
    emu.raw(
        Method::POST,
        "/v1/payment_methods/pm_card_visa/attach",
        &[("customer", customer.as_str())],
    )
    .await;
    let subscription = emu
        .raw(
            Method::POST,
            "/v1/subscriptions",
            &[
                ("customer", customer.as_str()),
                ("items[0][price]", price.id.as_str()),
                ("trial_period_days", "7"),
            ],
        )
        .await
        .json::<Value>()
        .await
        .expect("subscription");
    let subscription = subscription["id"].as_str().expect("id").to_owned();
    let endpoint = emu
        .raw(Method::GET, "/v1/webhook_endpoints", &[])
        .await
        .json::<Value>()
        .await
        .expect("endpoints");
    let endpoint = endpoint["data"][0]["id"].as_str().expect("id").to_owned();
    // Let the set-up's events be delivered so the snapshot is stable.
    receiver
        .wait_until("the set-up's events", |d| {
            d.iter()
                .any(|d| d.json()["type"] == "customer.subscription.created")
        })
        .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let before = state(&emu).await;

    let sub_path = format!("/v1/subscriptions/{subscription}");
    let endpoint_path = format!("/v1/webhook_endpoints/{endpoint}");
    let customer_path = format!("/v1/customers/{customer}");
    let routes: Vec<(Method, &str, Form)> = vec![
        // objects
        (Method::GET, "/v1/customers", vec![]),
        (Method::GET, customer_path.as_str(), vec![]),
        (
            Method::POST,
            "/v1/customers",
            vec![("email", "x@evil.test")],
        ),
        (
            Method::POST,
            sub_path.as_str(),
            vec![("trial_end", "2099999999")],
        ),
        (Method::DELETE, sub_path.as_str(), vec![]),
        (
            Method::POST,
            "/v1/refunds",
            vec![("payment_intent", "pi_x")],
        ),
        (Method::GET, "/v1/events", vec![]),
        // webhook endpoints
        (
            Method::POST,
            "/v1/webhook_endpoints",
            vec![
                ("url", "https://evil.example/hook"),
                ("enabled_events[]", "*"),
            ],
        ),
        (Method::GET, "/v1/webhook_endpoints", vec![]),
        (Method::DELETE, endpoint_path.as_str(), vec![]),
        // the emulator's own controls
        (Method::GET, "/_emulator/clock", vec![]),
        (
            Method::POST,
            "/_emulator/clock/advance",
            vec![("seconds", "86400")],
        ),
        (Method::POST, "/_emulator/chaos", vec![("enabled", "true")]),
        (
            Method::POST,
            "/_emulator/webhook_endpoints",
            vec![("url", receiver.url.as_str()), ("secret", "whsec_attacker")],
        ),
        (Method::GET, "/_emulator/deliveries", vec![]),
    ];
    let basic_other = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("sk_test_other_account_key:")
        )
    };
    for (method, path, form) in &routes {
        for auth in [
            None,
            Some("Bearer sk_test_other_account_key"),
            Some("Bearer sk_test_"),
            Some("Bearer sk_live_anything_at_all_1"),
            Some(basic_other.as_str()),
            Some("Bearer "),
        ] {
            let response = call(&emu, method.clone(), path, form, auth).await;
            assert_eq!(
                response.status(),
                401,
                "{method} {path} with {auth:?} was not refused"
            );
            let body: Value = response.json().await.expect("Stripe's error body");
            assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
            assert!(body["error"]["message"].is_string());
            if let Some(auth) = auth {
                let shown = auth.trim_start_matches("Bearer ");
                if shown.len() > 20 {
                    assert!(
                        !body.to_string().contains(shown),
                        "the error echoes the whole key: {body}"
                    );
                }
            }
        }
    }
    assert_eq!(
        state(&emu).await,
        before,
        "a refused call changed something"
    );
    // The right key still works, by Bearer and by Basic auth.
    let ok = call(
        &emu,
        Method::GET,
        "/v1/customers",
        &[],
        Some(&format!("Bearer {}", super::KEY)),
    )
    .await;
    assert_eq!(ok.status(), 200);
    let basic = {
        use base64::Engine as _;
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{}:", super::KEY))
        )
    };
    let ok = call(&emu, Method::GET, "/_emulator/clock", &[], Some(&basic)).await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn script_data_and_relative_urls_are_refused_at_creation_with_stripes_error() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Pro", 9900, "pro_monthly").await;
    let customer = emu
        .raw(Method::POST, "/v1/customers", &[("email", "a@acme.test")])
        .await
        .json::<Value>()
        .await
        .expect("customer");
    let customer = customer["id"].as_str().expect("id");
    let before = state(&emu).await;
    let good = "https://portal.example.com/billing/success?session_id={CHECKOUT_SESSION_ID}";
    for bad in [
        "javascript:alert(document.cookie)",
        "data:text/html,<script>alert(1)</script>",
        "/billing/success",
        "//evil.example/",
        "java\tscript:alert(1)",
    ] {
        let attempts: Vec<(&str, Form, &str)> = vec![
            (
                "/v1/checkout/sessions",
                vec![
                    ("mode", "subscription"),
                    ("line_items[0][price]", price.id.as_str()),
                    ("line_items[0][quantity]", "1"),
                    ("success_url", bad),
                    ("cancel_url", "https://portal.example.com/cancel"),
                ],
                "success_url",
            ),
            (
                "/v1/checkout/sessions",
                vec![
                    ("mode", "subscription"),
                    ("line_items[0][price]", price.id.as_str()),
                    ("line_items[0][quantity]", "1"),
                    ("success_url", good),
                    ("cancel_url", bad),
                ],
                "cancel_url",
            ),
            (
                "/v1/billing_portal/sessions",
                vec![("customer", customer), ("return_url", bad)],
                "return_url",
            ),
            (
                "/v1/webhook_endpoints",
                vec![("url", bad), ("enabled_events[]", "*")],
                "url",
            ),
            (
                "/_emulator/webhook_endpoints",
                vec![("url", bad), ("secret", "whsec_x")],
                "url",
            ),
        ];
        for (path, form, param) in attempts {
            let response = emu.raw(Method::POST, path, &form).await;
            assert_eq!(response.status(), 400, "{path} took {param}={bad:?}");
            let body: Value = response.json().await.expect("json");
            assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
            assert_eq!(body["error"]["param"], param, "{body}");
            if path.starts_with("/v1/") {
                assert_eq!(body["error"]["code"], "url_invalid", "{body}");
            }
        }
    }
    assert_eq!(state(&emu).await, before, "a refused URL created something");
}

#[tokio::test]
async fn hosted_pages_send_a_strict_policy_and_never_link_an_unchecked_url() {
    let emu = TestEmulator::start().await;
    let price = monthly_price(&emu, "Pro", 9900, "pro_monthly").await;
    let session: Value = emu
        .raw(
            Method::POST,
            "/v1/checkout/sessions",
            &[
                ("mode", "subscription"),
                ("line_items[0][price]", price.id.as_str()),
                ("line_items[0][quantity]", "1"),
                (
                    "success_url",
                    "https://portal.example.com/ok?id={CHECKOUT_SESSION_ID}",
                ),
                ("cancel_url", "https://portal.example.com/cancel"),
            ],
        )
        .await
        .json()
        .await
        .expect("session");
    let url = session["url"].as_str().expect("url").to_owned();
    let id = session["id"].as_str().expect("id").to_owned();
    let page = emu.http.get(&url).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let csp = page
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .expect("a content policy")
        .to_owned();
    for part in [
        "default-src 'none'",
        "frame-ancestors 'none'",
        "style-src 'self'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("script-src"), "scripts stay forbidden: {csp}");
    assert_eq!(
        page.headers().get("x-frame-options").map(|v| v.as_bytes()),
        Some(&b"DENY"[..])
    );
    let html = page.text().await.expect("html");
    assert!(!html.contains("<script"), "{html}");
    assert!(
        !html.contains("<style"),
        "inline styles would need unsafe-inline"
    );
    assert!(html.contains("href=\"https://portal.example.com/cancel\""));
    let css = emu
        .http
        .get(format!("{}/assets/hosted.css", emu.base))
        .send()
        .await
        .expect("css");
    assert_eq!(css.status(), 200);
    assert!(css
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/css")));

    // A value stored before URLs were checked (or by any other path) is still not linked.
    sqlx::query(
        "UPDATE stripe_emulator.objects
         SET data = jsonb_set(data, '{cancel_url}', '\"javascript:alert(document.cookie)\"')
         WHERE id = $1",
    )
    .bind(&id)
    .execute(&emu.pool)
    .await
    .expect("poison");
    let html = emu
        .http
        .get(&url)
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("html");
    assert!(!html.contains("javascript:"), "{html}");
    assert!(!html.contains("Back (cancel)"));
}

#[tokio::test]
async fn only_the_emulator_is_served_on_its_address() {
    let emu = TestEmulator::start().await;
    for path in [
        "/",
        "/login",
        "/signup",
        "/orgs/new",
        "/admin",
        "/healthz",
        "/stripe-emulator/v1/customers",
    ] {
        let response = emu
            .http
            .get(format!("{}{path}", emu.base))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), 404, "{path}");
        let body: Value = response.json().await.expect("Stripe's 404 body");
        assert_eq!(body["error"]["type"], "invalid_request_error");
    }
}

#[test]
fn the_emulator_serves_the_api_version_async_stripe_is_built_for() {
    assert_eq!(
        stripe_emulator::store::API_VERSION,
        stripe_shared::version::VERSION.as_str()
    );
}
