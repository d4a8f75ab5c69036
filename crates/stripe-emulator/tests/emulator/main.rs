//! The Stripe emulator, driven through async-stripe (and, for the hosted pages, through HTTP as a
//! browser would): one emulator per test on its own port and database, with fast timings, and a
//! webhook receiver that records what arrives.

mod api;
mod flows;
mod harness;
mod keys;
mod lists;
mod webhooks;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use reqwest::redirect::Policy;
use sqlx::PgPool;
use stripe_emulator::{ApiKeys, Config, Running, Timing};

/// The key every test emulator accepts.
pub const KEY: &str = "sk_test_emulator_tests_0001";

pub struct TestEmulator {
    pub base: String,
    /// Serving until dropped.
    pub running: Running,
    pub stripe: stripe::Client,
    /// A browser for the hosted pages: keeps no cookies, follows no redirects.
    pub http: reqwest::Client,
    pub pool: PgPool,
}

impl TestEmulator {
    pub async fn start() -> Self {
        Self::serve(harness::fresh_pool().await).await
    }

    /// Serves an emulator over an existing database (as after a restart).
    pub async fn serve(pool: PgPool) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let running = stripe_emulator::serve::start(
            pool.clone(),
            listener,
            None,
            Config {
                secret_keys: ApiKeys::new([KEY.to_owned()]).expect("key"),
                webhooks: Vec::new(),
                chaos: false,
                timing: Timing {
                    tick: Duration::from_millis(200),
                    webhook_retry_base: Duration::from_millis(100),
                },
            },
        )
        .await
        .expect("the emulator starts");
        let base = running.base_url().to_owned();
        let stripe = stripe::ClientBuilder::new(KEY)
            .url(format!("{base}/"))
            .build()
            .expect("stripe client");
        let http = reqwest::Client::builder()
            .redirect(Policy::none())
            .build()
            .expect("http client");
        Self {
            base,
            running,
            stripe,
            http,
            pool,
        }
    }

    /// A raw API call with Stripe's form encoding, for what typed clients cannot send.
    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(KEY);
        let request = if method == reqwest::Method::GET {
            request.query(form)
        } else {
            request.form(form)
        };
        request.send().await.expect("request")
    }

    /// Registers a webhook endpoint with a known secret.
    pub async fn listen(&self, receiver: &Receiver) {
        let response = self
            .raw(
                reqwest::Method::POST,
                "/_emulator/webhook_endpoints",
                &[("url", &receiver.url), ("secret", &receiver.secret)],
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "{}",
            response.text().await.unwrap_or_default()
        );
    }

    pub async fn chaos(&self, on: bool) {
        let response = self
            .raw(
                reqwest::Method::POST,
                "/_emulator/chaos",
                &[("enabled", if on { "true" } else { "false" })],
            )
            .await;
        assert_eq!(response.status(), 200);
    }

    /// Fills in and submits a hosted Checkout page, as a person would.
    pub async fn pay(
        &self,
        checkout_url: &str,
        card: Option<&str>,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let page = self.http.get(checkout_url).send().await.expect("page");
        assert_eq!(page.status(), 200);
        let mut form: Vec<(&str, &str)> =
            vec![("email", "payer@example.com"), ("name", "Ada Payer")];
        if let Some(number) = card {
            form.extend([
                ("card_number", number),
                ("card_expiry", "12 / 34"),
                ("card_cvc", "123"),
            ]);
        }
        form.extend_from_slice(extra);
        self.http
            .post(checkout_url)
            .form(&form)
            .send()
            .await
            .expect("submit")
    }
}

/// One delivered webhook: the raw body and its `Stripe-Signature` header.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub payload: String,
    pub signature: String,
}

impl Delivery {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.payload).expect("json payload")
    }
}

#[derive(Default)]
struct ReceiverState {
    deliveries: Vec<Delivery>,
    /// Answer 500 to this many requests before accepting.
    fail_first: usize,
    seen: usize,
}

/// A webhook endpoint on loopback that records every delivery it accepts.
pub struct Receiver {
    pub url: String,
    pub secret: String,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Self {
        let state = Arc::new(Mutex::new(ReceiverState {
            fail_first,
            ..ReceiverState::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url,
            secret: "whsec_test_receiver_secret".into(),
            state,
        }
    }

    pub fn deliveries(&self) -> Vec<Delivery> {
        self.state.lock().expect("lock").deliveries.clone()
    }

    pub fn attempts(&self) -> usize {
        self.state.lock().expect("lock").seen
    }

    /// Waits (up to 15 s) until `done` holds for the deliveries so far.
    pub async fn wait_until(
        &self,
        what: &str,
        done: impl Fn(&[Delivery]) -> bool,
    ) -> Vec<Delivery> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let deliveries = self.deliveries();
            if done(&deliveries) {
                return deliveries;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {} deliveries",
                deliveries.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The types of the delivered events, in arrival order.
    pub fn types(&self) -> Vec<String> {
        self.deliveries()
            .iter()
            .map(|d| d.json()["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<Mutex<ReceiverState>>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut state = state.lock().expect("lock");
    state.seen += 1;
    if state.seen <= state.fail_first {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    let signature = headers
        .get("stripe-signature")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    state.deliveries.push(Delivery {
        payload: String::from_utf8_lossy(&body).into_owned(),
        signature,
    });
    StatusCode::OK
}

/// Pulls the `cs_...` id out of a Checkout success redirect.
pub fn session_id_from(location: &str) -> String {
    location
        .split("session_id=")
        .nth(1)
        .unwrap_or_default()
        .split('&')
        .next()
        .unwrap_or_default()
        .to_owned()
}
