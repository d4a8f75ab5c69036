//! The harness's check that the OpenAPI document matches what the endpoints really answer: for
//! any call, [`TestApp::assert_documented`] asserts with real validators (Python's
//! `openapi-spec-validator` for the document, `jsonschema` for the body; `openapi_check.py`)
//! that the document served at `/api/v1/openapi.json` is valid OpenAPI 3.1, that the answer's
//! status is listed for that operation, and that its JSON body matches the schema listed for
//! that status, with no field the document does not name. [`TestApp::documented_call`] makes a
//! call and checks it in one step, so every endpoint's tests can check every answer.
//!
//! The validators run in the Python that `scripts/test` prepares: `STRIPE_PYTHON`, else
//! `~/.cache/billing-portal/venv/bin/python`.

use std::collections::HashSet;
use std::sync::Mutex;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::harness::TestApp;

/// Documents already validated as OpenAPI 3.1 in this process (by their text), so each one's
/// full check runs once.
static VALIDATED: Mutex<Option<HashSet<String>>> = Mutex::new(None);

const CHECKER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/integration/openapi_check.py"
);

fn python() -> String {
    std::env::var("STRIPE_PYTHON")
        .ok()
        .filter(|p| !p.is_empty() && p != "skip")
        .unwrap_or_else(|| {
            let home = std::env::var("HOME").unwrap_or_default();
            format!("{home}/.cache/billing-portal/venv/bin/python")
        })
}

/// [`TestApp::assert_documented`] for the app at `base`, with its scratch folder `scratch`.
pub async fn assert_documented_at(
    base: &str,
    scratch: &std::path::Path,
    method: &str,
    path_template: &str,
    status: StatusCode,
    body: &Value,
) {
    let document = reqwest::Client::new()
        .get(format!("{base}/api/v1/openapi.json"))
        .send()
        .await
        .expect("the OpenAPI document")
        .text()
        .await
        .expect("its text");
    let check_spec = {
        let mut seen = VALIDATED.lock().unwrap_or_else(|e| e.into_inner());
        seen.get_or_insert_with(HashSet::new)
            .insert(document.clone())
    };
    let path = scratch.join(format!("openapi-{}.json", uuid::Uuid::new_v4().simple()));
    tokio::fs::write(&path, &document)
        .await
        .expect("saving the document");
    let input = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    let mut child = tokio::process::Command::new(python())
        .arg(CHECKER)
        .arg(&path)
        .arg(method)
        .arg(path_template)
        .arg(status.as_u16().to_string())
        .arg(if check_spec { "1" } else { "0" })
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "running {} (set STRIPE_PYTHON to a Python with openapi-spec-validator and jsonschema, as scripts/test installs): {e}",
                python()
            )
        });
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(input.as_bytes())
            .await
            .expect("writing the body");
    }
    let output = child.wait_with_output().await.expect("the checker ran");
    let _ = tokio::fs::remove_file(&path).await;
    if !output.status.success() && check_spec {
        // Checked in full again next time, so a later call reports the same problem.
        if let Ok(mut seen) = VALIDATED.lock() {
            seen.get_or_insert_with(HashSet::new).remove(&document);
        }
    }
    assert!(
        output.status.success(),
        "not as documented: {}{}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
}

impl TestApp {
    /// Asserts that answering `status` with `body` (`Value::Null` for no body) to
    /// `method path_template` (as the document names it: `/api/v1/features/{key}`) is what the
    /// served OpenAPI document says, checked by real validators.
    pub async fn assert_documented(
        &self,
        method: &str,
        path_template: &str,
        status: StatusCode,
        body: &Value,
    ) {
        assert_documented_at(
            &self.base,
            self.data_dir.path(),
            method,
            path_template,
            status,
            body,
        )
        .await;
    }

    /// Calls `method path` (with the API key `key` and a JSON `body`, when given), asserts the
    /// answer is documented under `path_template`, and returns its status and JSON.
    pub async fn documented_call(
        &self,
        method: Method,
        path: &str,
        path_template: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .another_browser()
            .request(method.clone(), self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("API call");
        let status = response.status();
        let text = response.text().await.expect("body");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| {
                panic!("{method} {path} answered {status} with non-JSON ({e}): {text}")
            })
        };
        self.assert_documented(method.as_str(), path_template, status, &json)
            .await;
        (status, json)
    }

    /// A new API key of organization `slug` (every scope), as its page or the CLI makes one.
    pub async fn api_key_of(&self, slug: &str) -> String {
        let org: uuid::Uuid = sqlx::query_scalar("SELECT id FROM organizations WHERE slug = $1")
            .bind(slug)
            .fetch_one(&self.pool)
            .await
            .expect("the organization");
        billing_portal::api::keys::create(&self.pool, org, "Tests", None)
            .await
            .expect("an API key")
    }
}
