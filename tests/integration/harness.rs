//! The test harness: one throwaway PostgreSQL cluster per test process (started from the local
//! binaries, killed with the process), a fresh database per test, and the real server on a free
//! port with an HTTP client that keeps cookies like a browser.

use std::sync::OnceLock;

use billing_portal::config::Settings;
use billing_portal::startup::Application;
use private_postgres::PrivateCluster;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Response, StatusCode};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;

static CLUSTER: OnceLock<PrivateCluster> = OnceLock::new();

/// With `TEST_LOG` set (a filter such as `warn`), the portals the tests start log to the test's
/// output: for finding out why a test failed on a busy machine.
fn log_when_asked() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    if let Ok(filter) = std::env::var("TEST_LOG") {
        ONCE.call_once(|| {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        });
    }
}

/// The process-wide cluster, started on first use.
pub fn cluster() -> &'static PrivateCluster {
    CLUSTER.get_or_init(|| {
        private_postgres::throwaway::start_for_this_process("billing-portal-tests")
            .expect("starting the test PostgreSQL cluster")
    })
}

/// A new empty database on the test cluster; returns its connection options and URL.
pub async fn fresh_database() -> (PgConnectOptions, String) {
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    private_postgres::throwaway::create_database(cluster(), &name)
        .await
        .expect("a fresh test database")
}

pub struct TestApp {
    pub base: String,
    /// The offline Stripe the app started (its own address and key), unless a Stripe key was set.
    pub stripe_base: Option<String>,
    pub stripe_key: Option<String>,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub database_url: String,
    pub data_dir: tempfile::TempDir,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    /// Starts the real server on a fresh database, after `adjust` has changed the settings.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let (_, database_url) = fresh_database().await;
        Self::spawn_on(database_url, adjust).await
    }

    /// Another server on an existing database (several instances side by side).
    pub async fn spawn_on(database_url: String, adjust: impl FnOnce(&mut Settings)) -> Self {
        log_when_asked();
        let data_dir = tempfile::tempdir().expect("temp dir");
        let mut settings = Settings::local(Some(database_url.clone()), data_dir.path().into());
        adjust(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("building the app");
        let base = format!("http://{}", app.local_addr().expect("bound"));
        let pool = app.pool().clone();
        let stripe_base = app.local_stripe().map(|s| s.base_url().to_owned());
        let stripe_key = app.local_stripe().map(|s| s.secret_key.clone());
        tokio::spawn(app.run_until(std::future::pending()));
        Self {
            base,
            stripe_base,
            stripe_key,
            client: browser(),
            pool,
            database_url,
            data_dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A URL on the app's offline Stripe (its own origin).
    pub fn stripe_url(&self, path: &str) -> String {
        let base = self
            .stripe_base
            .as_deref()
            .expect("this app runs its own Stripe");
        format!("{base}{path}")
    }

    /// The secret key the app's offline Stripe accepts.
    pub fn stripe_key(&self) -> &str {
        self.stripe_key
            .as_deref()
            .expect("this app runs its own Stripe")
    }

    /// A Stripe gateway on the app's offline Stripe, for calling services and jobs directly.
    pub fn gateway(&self) -> billing_portal::stripe_gateway::Gateway {
        billing_portal::stripe_gateway::Gateway::new(self.stripe_key(), Some(&self.stripe_url("")))
            .expect("a gateway on the app's Stripe")
    }

    /// Gives organization `slug` the Stripe customer `id` (unless it has one) and returns the
    /// customer it has, for events written by hand.
    pub async fn stripe_customer_of(&self, slug: &str, id: &str) -> String {
        sqlx::query(
            "INSERT INTO billing_customers (org_id, stripe_customer_id)
             SELECT id, $2 FROM organizations WHERE slug = $1 ON CONFLICT (org_id) DO NOTHING",
        )
        .bind(slug)
        .bind(id)
        .execute(&self.pool)
        .await
        .expect("customer");
        sqlx::query_scalar(
            "SELECT stripe_customer_id FROM billing_customers b
             JOIN organizations o ON o.id = b.org_id WHERE o.slug = $1",
        )
        .bind(slug)
        .fetch_one(&self.pool)
        .await
        .expect("customer")
    }

    /// An authenticated call to the app's offline Stripe (form-encoded, as Stripe takes them).
    pub fn stripe_call(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.stripe_url(path))
            .bearer_auth(self.stripe_key())
    }

    /// A second, independent browser (its own cookies) against the same server.
    pub fn another_browser(&self) -> reqwest::Client {
        browser()
    }

    /// A browser whose connections come from another loopback address (127.0.0.0/8 is all
    /// local), so the server sees another client address.
    pub fn browser_from(&self, ip: [u8; 4]) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .default_headers(html_accept())
            .timeout(std::time::Duration::from_secs(60))
            .redirect(Policy::none())
            .local_address(std::net::IpAddr::from(ip))
            .build()
            .expect("client")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.get_with(&self.client, path).await
    }

    pub async fn get_with(&self, client: &reqwest::Client, path: &str) -> Response {
        client.get(self.url(path)).send().await.expect("GET")
    }

    /// Loads `form_page` to get an anti-forgery token (and cookie), then posts `fields` with it to
    /// `action`, as a browser submitting the form would.
    pub async fn submit(&self, form_page: &str, action: &str, fields: &[(&str, &str)]) -> Response {
        self.submit_with(&self.client, form_page, action, fields)
            .await
    }

    pub async fn submit_with(
        &self,
        client: &reqwest::Client,
        form_page: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> Response {
        let page = self
            .get_with(client, form_page)
            .await
            .text()
            .await
            .expect("body");
        // The form's own hidden fields (its anti-forgery token, the organization it is about,
        // where to go next), as a browser would send them, then what the test types.
        let mut form: Vec<(String, String)> = hidden_fields(&page, action);
        if form.is_empty() {
            form.push(("authenticity_token".to_owned(), authenticity_token(&page)));
        }
        for (name, value) in fields {
            form.retain(|(n, _)| n != name);
            form.push(((*name).to_owned(), (*value).to_owned()));
        }
        client
            .post(self.url(action))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    /// Starts a trial of `plan` for the organization `slug` from its plans page.
    pub async fn start_trial(&self, slug: &str, plan: &str) -> Response {
        self.submit(
            &format!("/orgs/{slug}/plans"),
            "/forms/billing/trial",
            &[("slug", slug), ("plan", plan)],
        )
        .await
    }

    /// Follows the redirect a form's answer gave, as a browser does.
    pub async fn follow(&self, response: &Response) -> Response {
        self.follow_with(&self.client, response).await
    }

    pub async fn follow_with(&self, client: &reqwest::Client, response: &Response) -> Response {
        let target = location(response);
        assert!(
            target.starts_with('/'),
            "expected a redirect to a page of the portal, got {:?} (status {})",
            target,
            response.status()
        );
        self.get_with(client, &target).await
    }

    pub async fn sign_up(&self, email: &str, password: &str, org: &str) -> Response {
        let response = self
            .submit(
                "/signup",
                "/forms/signup",
                &[("email", email), ("password", password), ("org_name", org)],
            )
            .await;
        assert_eq!(response.status(), StatusCode::FOUND, "signup redirects");
        response
    }

    pub async fn log_in_with(
        &self,
        client: &reqwest::Client,
        email: &str,
        password: &str,
    ) -> Response {
        self.submit_with(
            client,
            "/login",
            "/forms/login",
            &[("email", email), ("password", password)],
        )
        .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Response {
        self.log_in_with(&self.client, email, password).await
    }

    pub async fn log_out(&self) -> Response {
        // Any signed-in page carries the log-out form; the start page redirects to one.
        self.submit("/orgs/new", "/forms/logout", &[]).await
    }

    /// Runs the binary's command line against this app's database.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_billing-portal"))
            .args(args)
            .env("DATABASE_URL", &self.database_url)
            .env("DATA_DIR", self.data_dir.path())
            .output()
            .expect("running the command line")
    }

    /// Runs the command line, asserts it succeeded, and returns what it printed.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(&self.pool)
            .await
            .expect("count query")
    }
}

/// A client that keeps cookies and asks for HTML, as a browser without JavaScript does (the
/// server functions answer such a client with redirects).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(html_accept())
        // A request that hangs fails its test instead of the whole run.
        .timeout(std::time::Duration::from_secs(60))
        .redirect(Policy::none())
        .build()
        .expect("client")
}

fn html_accept() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        reqwest::header::ACCEPT,
        reqwest::header::HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
    );
    headers
}

/// Posts `form` to `url` with `client` and asserts the anti-forgery check refused it: 403 and
/// the expired-form page.
pub async fn assert_forgery_refused(
    client: &reqwest::Client,
    url: String,
    form: &[(&str, &str)],
    what: &str,
) {
    let response = client.post(url).form(form).send().await.expect("POST");
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("This form has expired"),
        "{what}"
    );
}

/// Asserts that `response` is a throttled refusal: 429, `Retry-After`, and a page that names
/// the limit with `names`.
pub async fn assert_throttled(response: Response, names: &str) {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    let html = response.text().await.expect("html");
    assert!(html.contains(names), "{names:?} not in {html}");
}

/// The hidden inputs of the form in `html` that posts to `action`.
pub fn hidden_fields(html: &str, action: &str) -> Vec<(String, String)> {
    let marker = format!("action=\"{action}\"");
    let Some(at) = html.find(&marker) else {
        return Vec::new();
    };
    let form_start = html[..at].rfind("<form").unwrap_or(at);
    let form_end = html[at..]
        .find("</form>")
        .map_or(html.len(), |end| at + end);
    let form = &html[form_start..form_end];
    let mut fields = Vec::new();
    let mut rest = form;
    while let Some(start) = rest.find("<input") {
        let end = rest[start..].find('>').map_or(rest.len(), |e| start + e);
        let tag = &rest[start..end];
        if attribute(tag, "type").as_deref() == Some("hidden") {
            if let Some(name) = attribute(tag, "name") {
                fields.push((name, attribute(tag, "value").unwrap_or_default()));
            }
        }
        rest = &rest[end..];
    }
    fields
}

fn attribute(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let start = tag.find(&marker)? + marker.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&#39;", "'")
            .replace("&amp;", "&"),
    )
}

/// The value of the hidden anti-forgery field in a page.
pub fn authenticity_token(html: &str) -> String {
    let marker = "name=\"authenticity_token\" value=\"";
    let start = html
        .find(marker)
        .unwrap_or_else(|| panic!("no anti-forgery field in page:\n{html}"))
        + marker.len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The `Set-Cookie` header that sets cookie `name`.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub const PASSWORD: &str = "correct horse battery";

/// A Stripe emulator of its own (not the one an app starts), on a fresh database, for tests of
/// the gateway and the command line against "some Stripe".
pub struct StandaloneStripe {
    pub base: String,
    pub key: String,
    pub stripe: stripe::Client,
    _running: stripe_emulator::Running,
}

impl StandaloneStripe {
    pub async fn start() -> Self {
        let (options, _) = fresh_database().await;
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .expect("pool");
        let key = stripe_emulator::ApiKeys::generate();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = stripe_emulator::serve::start(
            pool,
            listener,
            None,
            stripe_emulator::Config {
                secret_keys: stripe_emulator::ApiKeys::new([key.clone()]).expect("key"),
                webhooks: Vec::new(),
                chaos: false,
                timing: stripe_emulator::Timing::default(),
            },
        )
        .await
        .expect("the emulator starts");
        let base = running.base_url().to_owned();
        let stripe = stripe::ClientBuilder::new(&key)
            .url(format!("{base}/"))
            .build()
            .expect("stripe client");
        Self {
            base,
            key,
            stripe,
            _running: running,
        }
    }
}

/// The default plan catalog, `plans/hybrid.toml`.
pub fn hybrid_catalog() -> billing_portal::billing::catalog::Catalog {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/plans/hybrid.toml");
    billing_portal::config::load_catalog(std::path::Path::new(path)).expect("the default catalog")
}
