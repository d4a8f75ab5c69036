//! Webhook deliveries for the fault tests: signed `invoice.paid` events from many concurrent
//! senders, as Stripe posts them, with a record of which were acknowledged (2xx). Stripe retries
//! whatever was not acknowledged; [`deliver`] is called again with those.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::billing::signed;

/// An `invoice.paid` event `n` of the run `run` for `customer`: (event id, JSON).
pub fn invoice_paid(run: &str, n: usize, customer: &str) -> (String, String) {
    let id = format!("evt_{run}_{n}");
    let created = chrono::Utc::now().timestamp();
    let payload = serde_json::json!({
        "id": id, "object": "event", "api_version": "2026-09-30.endive", "created": created,
        "type": "invoice.paid", "livemode": false, "pending_webhooks": 1,
        "data": { "object": {
            "id": format!("in_{run}_{n}"), "object": "invoice", "customer": customer,
            "status": "paid", "currency": "usd", "amount_due": 999, "amount_paid": 999,
            "number": format!("F-{run}-{n}"), "created": created,
            "period_start": created, "period_end": created + 2_592_000,
            "hosted_invoice_url": null, "invoice_pdf": null,
        } },
    });
    (id, payload.to_string())
}

/// Which events were acknowledged and which were not (refused, failed or no answer).
#[derive(Default, Debug)]
pub struct Delivered {
    pub acked: Vec<String>,
    pub unacked: Vec<(String, String)>,
    /// Answers that were neither 2xx nor a lost connection: (status, body).
    pub refused: Vec<(u16, String)>,
}

/// Deliveries in progress.
pub struct Deliveries {
    pub acked: Arc<AtomicUsize>,
    done: tokio::task::JoinHandle<Delivered>,
}

impl Deliveries {
    /// Posts `events` to `base` with `concurrency` senders, signed with `secret`.
    pub fn start(
        base: &str,
        secret: &str,
        events: Vec<(String, String)>,
        concurrency: usize,
    ) -> Self {
        let acked = Arc::new(AtomicUsize::new(0));
        let counter = acked.clone();
        let (base, secret) = (base.to_owned(), secret.to_owned());
        let done = tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let gate = Arc::new(Semaphore::new(concurrency));
            let gone = Arc::new(AtomicBool::new(false));
            let result = Arc::new(Mutex::new(Delivered::default()));
            let mut tasks = Vec::new();
            for (id, payload) in events {
                let permit = gate.clone().acquire_owned().await.expect("gate");
                let (http, url) = (http.clone(), format!("{base}/webhooks/stripe"));
                let (result, counter, gone) = (result.clone(), counter.clone(), gone.clone());
                let signature = signed(&secret, &payload);
                tasks.push(tokio::spawn(async move {
                    let _permit = permit;
                    if gone.load(Ordering::Relaxed) {
                        // The portal is down: Stripe keeps the event for a later retry.
                        result.lock().expect("result").unacked.push((id, payload));
                        return;
                    }
                    let answer = http
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("stripe-signature", signature)
                        .body(payload.clone())
                        .send()
                        .await;
                    let mut result = result.lock().expect("result");
                    match answer {
                        Ok(r) if r.status().is_success() => {
                            counter.fetch_add(1, Ordering::Relaxed);
                            result.acked.push(id);
                        }
                        Ok(r) => {
                            result.refused.push((r.status().as_u16(), id.clone()));
                            result.unacked.push((id, payload));
                        }
                        Err(_) => {
                            gone.store(true, Ordering::Relaxed);
                            result.unacked.push((id, payload));
                        }
                    }
                }));
            }
            for task in tasks {
                task.await.expect("a sender");
            }
            Arc::try_unwrap(result)
                .unwrap_or_else(|_| panic!("senders ended"))
                .into_inner()
                .expect("result")
        });
        Self { acked, done }
    }

    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    pub async fn finish(self) -> Delivered {
        self.done.await.expect("deliveries")
    }
}
