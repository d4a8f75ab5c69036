//! What operators watch: `/metrics` answers only the scraper holding `METRICS_TOKEN`, in a text
//! format Prometheus' own parser reads, with the figures the README lists; `LOG_FORMAT=json` writes
//! one JSON object per line carrying the request id.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;

use crate::harness::{fresh_database, TestApp, PASSWORD};

const TOKEN: &str = "scrape-me-0123456789";

/// The exposition parsed by `prometheus_client` (see `prometheus_check.py`).
fn parsed(exposition: &str) -> Value {
    let python = std::env::var("STRIPE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty() && p != "skip")
        .unwrap_or_else(|| {
            format!(
                "{}/.cache/billing-portal/venv/bin/python",
                std::env::var("HOME").unwrap_or_default()
            )
        });
    let mut child = Command::new(&python)
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/integration/prometheus_check.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("running {python} (scripts/test installs prometheus-client into it): {e}")
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(exposition.as_bytes())
        .expect("write");
    let output = child.wait_with_output().expect("parser");
    assert!(
        output.status.success(),
        "Prometheus' parser refused the exposition: {}\n{exposition}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("json")
}

async fn scrape(app: &TestApp, token: Option<&str>) -> reqwest::Response {
    let mut request = app.another_browser().get(app.url("/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("scrape")
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let app = TestApp::spawn().await;
    assert_eq!(scrape(&app, None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        scrape(&app, Some("anything")).await.status(),
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn metrics_answer_only_the_token_and_parse_as_prometheus_text() {
    let app = TestApp::spawn_with(|s| {
        s.metrics_token = Some(billing_portal::config::Secret::new(TOKEN));
    })
    .await;
    for token in [None, Some("wrong"), Some("scrape-me-012345678")] {
        let refused = scrape(&app, token).await;
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(refused.headers()["www-authenticate"], "Bearer");
        assert!(!refused
            .text()
            .await
            .expect("body")
            .contains("http_requests_total"));
    }

    // Traffic of each kind: pages, a usage action through the API, a job run.
    app.sign_up("owner@acme.test", PASSWORD, "Acme").await;
    assert_eq!(app.get("/orgs/acme").await.status(), StatusCode::OK);
    let key = app.api_key_of("acme").await;
    let recorded = app
        .another_browser()
        .post(app.url("/api/v1/usage"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"tier": "small", "idempotency_key": "metrics-1"}))
        .send()
        .await
        .expect("usage");
    assert_eq!(recorded.status(), StatusCode::OK);
    billing_portal::db::lease::run_exclusive(&app.pool, "metrics-test-job", async { Ok(()) })
        .await
        .expect("job");

    let answer = scrape(&app, Some(TOKEN)).await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(answer.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/plain; version=0.0.4"));
    let families = parsed(&answer.text().await.expect("body"));

    let samples = |family: &str| -> Vec<Value> {
        families[family]["samples"]
            .as_array()
            .unwrap_or_else(|| panic!("no {family} in {families}"))
            .clone()
    };
    // Per route, by pattern, never by the path a client typed.
    let requests = samples("http_requests");
    assert_eq!(families["http_requests"]["type"], "counter");
    assert!(
        requests.iter().any(|s| s[1]["route"] == "/orgs/{slug}"
            && s[1]["method"] == "GET"
            && s[1]["status"] == "200"),
        "{requests:?}"
    );
    assert!(
        requests.iter().all(|s| s[1]["route"] != "/orgs/acme"),
        "a route labelled by its path: {requests:?}"
    );
    assert_eq!(
        families["http_request_duration_seconds"]["type"],
        "histogram"
    );
    assert!(samples("http_request_duration_seconds").iter().any(|s| s[0]
        == "http_request_duration_seconds_bucket"
        && s[1]["route"] == "/api/v1/usage"));
    // The usage writer committed at least the one action.
    let batches = samples("usage_writer_batch_actions");
    assert!(batches
        .iter()
        .any(|s| s[0] == "usage_writer_batch_actions_count" && s[2].as_f64() >= Some(1.0)));
    assert_eq!(families["usage_writer_commit_seconds"]["type"], "histogram");
    // Read from the database when scraped.
    let inbox = samples("webhook_inbox_events");
    for status in ["pending", "applied", "ignored", "failed"] {
        assert!(inbox.iter().any(|s| s[1]["status"] == status), "{inbox:?}");
    }
    let outbox = samples("notification_outbox_messages");
    for status in ["pending", "sent", "failed", "suppressed"] {
        assert!(
            outbox.iter().any(|s| s[1]["status"] == status),
            "{outbox:?}"
        );
    }
    assert!(families.get("webhook_apply_lag_seconds").is_some());
    assert!(families
        .get("webhook_inbox_oldest_pending_seconds")
        .is_some());
    assert!(samples("job_runs")
        .iter()
        .any(|s| s[1]["job"] == "metrics-test-job" && s[2].as_f64() == Some(1.0)));
    assert!(samples("db_pool_connections")[0][2].as_f64() >= Some(1.0));
    assert!(samples("db_pool_max_connections")[0][2].as_f64() >= Some(2.0));
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let (_, database_url) = fresh_database().await;
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut portal = Command::new(env!("CARGO_BIN_EXE_billing-portal"))
        .env("DATABASE_URL", &database_url)
        .env("DATA_DIR", data_dir.path())
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("STRIPE_EMULATOR_PORT", "0")
        .env("SEED_DEMO", "false")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the portal");
    let stdout = portal.stdout.take().expect("stdout");
    let (lines_tx, lines_rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut seen = Vec::new();
    let client = reqwest::Client::new();
    let mut asked = false;
    let found = loop {
        assert!(
            Instant::now() < deadline,
            "no JSON line with the request id: {seen:#?}"
        );
        if !asked {
            let answer = client
                .get(format!("http://127.0.0.1:{port}/healthz"))
                .header("x-request-id", "req-json-logs-1")
                .send()
                .await;
            asked = answer.is_ok_and(|a| a.headers()["x-request-id"] == "req-json-logs-1");
        }
        match lines_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) if line.contains("req-json-logs-1") => break line,
            Ok(line) => seen.push(line),
            Err(_) => {}
        }
    };
    let _ = portal.kill();
    let _ = portal.wait();
    let line: Value = serde_json::from_str(&found)
        .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {found}"));
    assert_eq!(line["span"]["id"], "req-json-logs-1", "{line}");
    assert_eq!(line["span"]["path"], "/healthz", "{line}");
    assert!(
        line["timestamp"].is_string() && line["level"].is_string(),
        "{line}"
    );
    // The lines before it (start-up) are JSON too.
    for earlier in seen.iter().filter(|l| l.starts_with('{')) {
        serde_json::from_str::<Value>(earlier).expect("JSON");
    }
}
