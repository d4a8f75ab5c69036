//! Start-up and operations: health checks, migrations under concurrency, the private PostgreSQL,
//! the demo seed, static assets and error pages.

use std::process::Command;

use billing_portal::config::Settings;
use billing_portal::seed;
use billing_portal::startup::Database;
use reqwest::StatusCode;

use crate::harness::{fresh_database, location, TestApp};

#[tokio::test]
async fn healthz_is_200_with_the_database_and_503_without() {
    let app = TestApp::spawn().await;
    let ok = app.get("/healthz").await;
    assert_eq!(ok.status(), StatusCode::OK);

    // Cut the server off from its database.
    let name: String = sqlx::query_scalar("SELECT current_database()")
        .fetch_one(&app.pool)
        .await
        .expect("name");
    let admin = sqlx::PgPool::connect_with(crate::harness::cluster().connect_options("postgres"))
        .await
        .expect("admin");
    sqlx::query(&format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"
    ))
    .execute(&admin)
    .await
    .expect("alter");
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1")
        .bind(&name)
        .execute(&admin)
        .await
        .expect("terminate");
    let down = app.get("/healthz").await;
    assert_eq!(down.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        down.json::<serde_json::Value>().await.expect("json")["database"],
        "unreachable"
    );
}

#[tokio::test]
async fn instances_starting_together_migrate_once_and_both_start() {
    let (_, url) = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let settings = Settings::local(Some(url), dir.path().into());
    let (a, b) = tokio::join!(Database::open(&settings), Database::open(&settings));
    let (a, b) = (a.expect("first instance"), b.expect("second instance"));
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations")
        .fetch_one(&a.pool)
        .await
        .expect("count");
    assert_eq!(applied, billing_portal::db::MIGRATOR.iter().count() as i64);
    a.close().await.expect("close");
    b.close().await.expect("close");
}

#[tokio::test]
async fn the_demo_seed_creates_working_logins_once() {
    let app = TestApp::spawn_with(|s| s.seed_demo = Some(true)).await;
    let logins =
        std::fs::read_to_string(seed::logins_file(app.data_dir.path())).expect("logins file");
    let password_of = |email: &str| {
        logins
            .lines()
            .find(|l| l.contains(email))
            .and_then(|l| l.rsplit(" / ").next())
            .expect("login line")
            .to_owned()
    };
    let response = app
        .log_in(seed::DEMO_OWNER, &password_of(seed::DEMO_OWNER))
        .await;
    assert_eq!(location(&response), "/");
    assert_eq!(location(&app.get("/").await), "/orgs/demo-company");
    let other = app.another_browser();
    app.log_in_with(&other, seed::DEMO_ADMIN, &password_of(seed::DEMO_ADMIN))
        .await;
    assert_eq!(
        app.get_with(&other, "/admin").await.status(),
        StatusCode::OK
    );

    // Seeding again finds users and changes nothing.
    assert!(!seed::seed_demo_if_empty(&app.pool, app.data_dir.path())
        .await
        .expect("seed"));
    // The owner, the admin and the owners of the demo's history.
    assert_eq!(
        app.count("SELECT count(*) FROM users").await,
        2 + seed::STORY_ORGS.len() as i64
    );
}

#[tokio::test]
async fn unknown_pages_get_a_404_page_and_assets_are_served() {
    let app = TestApp::spawn().await;
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing
        .text()
        .await
        .expect("body")
        .contains("We could not find that page."));
    let css = app.get("/pkg/billing-portal.css").await;
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/css"));
    assert_eq!(app.get("/favicon.svg").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_malformed_form_body_is_a_clear_400() {
    let app = TestApp::spawn().await;
    app.get("/signup").await;
    let response = app
        .client
        .post(app.url("/forms/signup"))
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response
        .text()
        .await
        .expect("body")
        .contains("Content-Type"));
}

#[test]
fn without_postgresql_binaries_start_up_says_how_to_fix_it() {
    let empty = tempfile::tempdir().expect("dir");
    let output = Command::new(env!("CARGO_BIN_EXE_billing-portal"))
        .arg("migrate")
        .env_remove("DATABASE_URL")
        .env("PG_BIN_DIR", empty.path())
        .env("DATA_DIR", empty.path().join("data"))
        .output()
        .expect("running migrate");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("No PostgreSQL server binaries found"),
        "{stderr}"
    );
    assert!(stderr.contains("DATABASE_URL"), "{stderr}");
}

#[test]
fn without_database_url_it_runs_its_own_postgresql_and_keeps_the_data() {
    let dir = tempfile::tempdir().expect("dir");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_billing-portal"))
            .args(args)
            .env_remove("DATABASE_URL")
            .env_remove("PG_BIN_DIR")
            .env("DATA_DIR", dir.path())
            .output()
            .expect("running the binary")
    };
    let created = run(&["create-admin", "ops@example.com"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    assert!(dir.path().join("postgres/PG_VERSION").exists());
    // A second run finds the same cluster with the account in it, and PostgreSQL was stopped in
    // between (otherwise this run would have connected to it rather than started it).
    let again = run(&["create-admin", "ops@example.com"]);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(String::from_utf8_lossy(&again.stdout).contains("is now a platform admin"));
    assert!(
        !dir.path().join("postgres/postmaster.pid").exists(),
        "PostgreSQL stopped cleanly"
    );
}

#[tokio::test]
async fn errors_under_api_are_json_with_a_code() {
    let app = TestApp::spawn().await;
    let response = app.get("/api/v1/no-such-endpoint").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = response.json().await.expect("json body");
    assert_eq!(body["error"]["code"], "not_found");
    assert!(body["error"]["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
}

#[tokio::test]
async fn without_a_stripe_key_the_portal_runs_its_own_stripe_on_another_origin() {
    let app = TestApp::spawn().await;
    let stripe_base = app.stripe_url("");
    assert_ne!(
        stripe_base, app.base,
        "the emulator has an origin of its own"
    );
    let client = stripe::ClientBuilder::new(app.stripe_key())
        .url(format!("{stripe_base}/"))
        .build()
        .expect("client");
    let customer = stripe_core::customer::CreateCustomer::new()
        .email("local@acme.test")
        .send(&client)
        .await
        .expect("the portal's emulator answers with its key");
    assert!(customer.id.as_str().starts_with("cus_"));
    let portal = stripe_billing::billing_portal_session::CreateBillingPortalSession::new()
        .customer(customer.id.as_str())
        .send(&client)
        .await
        .expect("portal session");
    assert!(portal.url.starts_with(&app.stripe_url("/portal/")));
    assert_eq!(
        app.client
            .get(&portal.url)
            .send()
            .await
            .expect("page")
            .status(),
        StatusCode::OK
    );
    // Another key, even a test key, is Stripe's 401.
    let other = stripe::ClientBuilder::new("sk_test_not_the_demos_key")
        .url(format!("{stripe_base}/"))
        .build()
        .expect("client");
    assert!(stripe_core::customer::ListCustomer::new()
        .send(&other)
        .await
        .is_err());
    // Nothing of the emulator is served on the portal's address, nor the portal on its.
    for path in [
        "/stripe-emulator/v1/customers",
        "/v1/customers",
        "/_emulator/clock",
    ] {
        assert_eq!(
            app.get(path).await.status(),
            StatusCode::NOT_FOUND,
            "{path}"
        );
    }
    for path in ["/login", "/signup", "/healthz", "/orgs/new"] {
        let response = app
            .client
            .get(app.stripe_url(path))
            .send()
            .await
            .expect("get");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // Starting Checkout redirects a form post there, so the pages' policy lets forms go there.
    let login = app.get("/login").await;
    let csp = login
        .headers()
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        csp.contains(&format!("form-action 'self' https: {stripe_base};")),
        "{csp}"
    );
    // The key is kept in the data folder and written beside the demo logins.
    let logins =
        std::fs::read_to_string(app.data_dir.path().join("demo-logins.txt")).expect("demo logins");
    assert!(logins.contains(app.stripe_key()), "{logins}");
    assert!(logins.contains(&stripe_base), "{logins}");
}

#[tokio::test]
async fn with_a_stripe_key_no_emulator_is_started() {
    let app = TestApp::spawn_with(|s| {
        s.stripe_secret_key = Some("sk_test_real".parse().expect("secret"))
    })
    .await;
    assert!(app.stripe_base.is_none());
    assert_eq!(
        app.get("/stripe-emulator/v1/customers").await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn a_broken_plan_catalog_stops_start_up_naming_file_plan_and_field() {
    let dir = tempfile::tempdir().expect("dir");
    let broken = dir.path().join("plans.toml");
    let good = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/plans/hybrid.toml"))
        .expect("catalog");
    std::fs::write(
        &broken,
        good.replace("price_cents = 9900", "price_cents = -5"),
    )
    .expect("write");
    let (_, url) = fresh_database().await;
    let mut settings = Settings::local(Some(url), dir.path().into());
    settings.plans_file = broken.clone();
    let error = match billing_portal::startup::Application::build(settings).await {
        Ok(_) => panic!("start-up must fail"),
        Err(e) => format!("{e:#}"),
    };
    assert_eq!(
        error,
        format!(
            "{}: plan \"pro\": field `price_cents`: must not be negative",
            broken.display()
        )
    );
}

#[tokio::test]
async fn the_portals_migrations_create_no_emulator_tables() {
    let (_, url) = fresh_database().await;
    let dir = tempfile::tempdir().expect("dir");
    let database = Database::open(&Settings::local(Some(url), dir.path().into()))
        .await
        .expect("migrated");
    let emulator_schema: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'stripe_emulator')",
    )
    .fetch_one(&database.pool)
    .await
    .expect("query");
    assert!(
        !emulator_schema,
        "the portal's migrations made emulator tables"
    );
    let recorded: Vec<String> =
        sqlx::query_scalar("SELECT description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&database.pool)
            .await
            .expect("migrations");
    assert!(
        !recorded.iter().any(|d| d.contains("emulator")),
        "{recorded:?}"
    );
}

/// A demo data folder from before the emulator had its own crate: the portal's migration
/// `20261121000002_stripe_emulator` had made the emulator's tables and recorded itself. The
/// portal still starts on it, and the emulator adopts its tables with what they hold.
#[tokio::test]
async fn a_database_from_before_the_move_keeps_working_with_its_stripe_state() {
    let (options, url) = fresh_database().await;
    {
        let pool = sqlx::PgPool::connect_with(options).await.expect("pool");
        billing_portal::db::migrate(&pool)
            .await
            .expect("today's portal migrations");
        // What the old migration left: its record in the portal's table, and the tables.
        sqlx::query(
            "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
             VALUES (20261121000002, 'stripe emulator', true, '\\x00'::bytea, 1)",
        )
        .execute(&pool)
        .await
        .expect("old record");
        sqlx::raw_sql(include_str!(
            "../../crates/stripe-emulator/migrations/20261121000001_objects.sql"
        ))
        .execute(&pool)
        .await
        .expect("old tables");
        sqlx::query(
            "INSERT INTO stripe_emulator.objects (id, kind, created, data)
             VALUES ('cus_fromtheolddays0000000001', 'customer', 1700000000,
                     '{\"id\": \"cus_fromtheolddays0000000001\", \"object\": \"customer\",
                       \"email\": \"old@acme.test\", \"created\": 1700000000, \"metadata\": {}}')",
        )
        .execute(&pool)
        .await
        .expect("an old customer");
        pool.close().await;
    }
    let app = TestApp::spawn_on(url, |_| {}).await;
    let customer: serde_json::Value = app
        .stripe_call(
            reqwest::Method::GET,
            "/v1/customers/cus_fromtheolddays0000000001",
        )
        .send()
        .await
        .expect("retrieve")
        .json()
        .await
        .expect("json");
    assert_eq!(customer["email"], "old@acme.test", "{customer}");
    assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    let old_record = app
        .count("SELECT count(*) FROM public._sqlx_migrations WHERE version = 20261121000002")
        .await;
    assert_eq!(old_record, 0);
    let adopted = app
        .count(
            "SELECT count(*) FROM stripe_emulator._sqlx_migrations WHERE version = 20261121000001",
        )
        .await;
    assert_eq!(adopted, 1);
}

/// Every connection of the portal carries its statement timeout and runs without JIT. With JIT
/// on, tables not yet analyzed (a new install, a new partition) made PostgreSQL compile a
/// batch's warning e-mails for about 200 ms to insert them in 1 ms.
#[tokio::test]
async fn the_portals_connections_time_out_statements_and_never_compile_them() {
    let (options, _) = fresh_database().await;
    let timeouts = billing_portal::db::Timeouts {
        statement: std::time::Duration::from_millis(1500),
        ..Default::default()
    };
    let pool = billing_portal::db::connect(options, 3, timeouts)
        .await
        .expect("pool");
    // Each of several connections, not only the first.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut connection = pool.acquire().await.expect("connection");
        let jit: String = sqlx::query_scalar("SHOW jit")
            .fetch_one(&mut *connection)
            .await
            .expect("jit");
        let timeout: String = sqlx::query_scalar("SHOW statement_timeout")
            .fetch_one(&mut *connection)
            .await
            .expect("statement_timeout");
        assert_eq!((jit.as_str(), timeout.as_str()), ("off", "1500ms"));
        held.push(connection);
    }
}
