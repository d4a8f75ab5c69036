//! Usage traffic for the fault tests: organizations with API keys and credits, many clients
//! sending `POST /api/v1/usage` and `/usage/batch` with fresh idempotency keys, and a record of
//! which actions were answered and how, so what the database holds afterwards can be checked
//! against what clients were told.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use billing_portal::orgs::model::OrgName;
use billing_portal::usage::ledger::{self, Entry, Kind};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

const TIERS: [&str; 4] = ["small", "medium", "large", "xl"];

/// Actions one batch request carries.
pub const BATCH: usize = 25;

#[derive(Clone)]
pub struct Org {
    pub id: Uuid,
    pub key: String,
}

/// `n` organizations, each with an API key and `credits` credits granted.
pub async fn orgs(pool: &PgPool, n: usize, credits: i64) -> Vec<Org> {
    let mut made = Vec::with_capacity(n);
    for i in 0..n {
        let mut tx = pool.begin().await.expect("tx");
        let name = OrgName::parse(&format!("Load {i}")).expect("name");
        let org = billing_portal::orgs::repo::insert_org(&mut tx, &name)
            .await
            .expect("org");
        let key = billing_portal::api::keys::create(&mut *tx, org.id, "Load", None)
            .await
            .expect("key");
        ledger::adjust(
            &mut tx,
            Entry {
                org_id: org.id,
                kind: Kind::Grant,
                millicredits: credits * 1000,
                reason: Some("fault test grant"),
                reference: None,
                actor_id: None,
            },
        )
        .await
        .expect("grant");
        tx.commit().await.expect("commit");
        made.push(Org { id: org.id, key });
    }
    made
}

/// One action a client sent.
#[derive(Clone, Debug)]
pub struct Sent {
    pub org: Uuid,
    pub key: String,
    pub tier: String,
}

/// What clients saw: actions answered 200 with their answer, and actions sent without an answer.
#[derive(Default)]
pub struct Record {
    pub answered: Vec<(Sent, Value)>,
    pub unanswered: Vec<Sent>,
    /// Statuses other than 200 and what they said (none are expected while the portal runs).
    pub other: Vec<(StatusCode, String)>,
    /// The longest any request took to be answered (or to fail).
    pub slowest: Duration,
}

/// Many clients sending single actions and batches until told to stop or the portal goes away.
pub struct Load {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicUsize>,
    record: Arc<Mutex<Record>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `clients` clients against `base`, spread over `orgs`.
    pub fn start(base: &str, orgs: &[Org], clients: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicUsize::new(0));
        let record = Arc::new(Mutex::new(Record::default()));
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        let tasks = (0..clients)
            .map(|client| {
                let (stop, answered, record) = (stop.clone(), answered.clone(), record.clone());
                let (http, base) = (http.clone(), base.to_owned());
                let org = orgs[client % orgs.len()].clone();
                tokio::spawn(async move {
                    let run = Uuid::new_v4().simple().to_string();
                    let mut n = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let size = if n.is_multiple_of(2) { BATCH } else { 1 };
                        let sent: Vec<Sent> = (0..size)
                            .map(|i| Sent {
                                org: org.id,
                                key: format!("{run}-{client}-{n}-{i}"),
                                tier: TIERS[(client + n + i) % TIERS.len()].to_owned(),
                            })
                            .collect();
                        let started = std::time::Instant::now();
                        let outcome = send(&http, &base, &org.key, &sent).await;
                        let mut record = record.lock().expect("record");
                        record.slowest = record.slowest.max(started.elapsed());
                        match outcome {
                            Ok(answers) => {
                                answered.fetch_add(sent.len(), Ordering::Relaxed);
                                record.answered.extend(sent.into_iter().zip(answers));
                            }
                            Err(Some(other)) => record.other.push(other),
                            Err(None) => {
                                // No answer: the portal went away. This client is done.
                                record.unanswered.extend(sent);
                                return;
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            stop,
            answered,
            record,
            tasks,
        }
    }

    /// Actions answered 200 so far.
    pub fn answered(&self) -> usize {
        self.answered.load(Ordering::Relaxed)
    }

    /// Waits until `n` actions were answered (at most `within`).
    pub async fn until_answered(&self, n: usize, within: Duration) {
        let deadline = tokio::time::Instant::now() + within;
        while self.answered() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} actions were answered within {within:?}",
                self.answered()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the clients (each finishes or loses its request in flight) and returns the record.
    pub async fn finish(self) -> Record {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            task.await.expect("a load client");
        }
        Arc::try_unwrap(self.record)
            .unwrap_or_else(|_| panic!("all clients ended"))
            .into_inner()
            .expect("record")
    }
}

/// Sends one action (as a single request) or several (as a batch); the answers per action, or
/// `Err(Some(..))` for another status, `Err(None)` for no answer at all.
pub async fn send(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    sent: &[Sent],
) -> Result<Vec<Value>, Option<(StatusCode, String)>> {
    let body = |s: &Sent| json!({ "tier": s.tier, "idempotency_key": s.key });
    let request = if sent.len() == 1 {
        http.post(format!("{base}/api/v1/usage"))
            .json(&body(&sent[0]))
    } else {
        let actions: Vec<Value> = sent.iter().map(body).collect();
        http.post(format!("{base}/api/v1/usage/batch"))
            .json(&json!({ "actions": actions }))
    };
    let response = request
        .bearer_auth(api_key)
        .send()
        .await
        .map_err(|_| None)?;
    let status = response.status();
    let text = response.text().await.map_err(|_| None)?;
    if status != StatusCode::OK {
        return Err(Some((status, text)));
    }
    let value: Value = serde_json::from_str(&text).map_err(|_| Some((status, text.clone())))?;
    Ok(if sent.len() == 1 {
        vec![value]
    } else {
        value["results"].as_array().cloned().unwrap_or_default()
    })
}

/// Every action stored, by (organization, idempotency key): (counted_as, millicredits, rows).
pub async fn stored(pool: &PgPool) -> HashMap<(Uuid, String), (String, i64, i64)> {
    let rows: Vec<(Uuid, String, String, i64, i64)> = sqlx::query_as(
        "SELECT org_id, idempotency_key, min(counted_as), min(millicredits), count(*)
         FROM usage_actions GROUP BY 1, 2",
    )
    .fetch_all(pool)
    .await
    .expect("stored actions");
    rows.into_iter()
        .map(|(org, key, counted, milli, n)| ((org, key), (counted, milli, n)))
        .collect()
}

/// Asserts that balances and counters reconcile with the ledger and the actions (no drift).
pub async fn no_drift(pool: &PgPool) {
    let report = billing_portal::usage::reconcile::run(pool, false)
        .await
        .expect("reconcile");
    assert!(report.clean(), "drift after the fault: {report:?}");
}

/// Checks the record against the database: every answered action stored exactly once as it was
/// answered.
pub async fn answered_are_stored_once(pool: &PgPool, record: &Record) {
    let stored = stored(pool).await;
    for (sent, answer) in &record.answered {
        assert_eq!(answer["status"], 200, "{answer}");
        let Some((counted, milli, rows)) = stored.get(&(sent.org, sent.key.clone())) else {
            panic!("an action answered 200 was lost: {sent:?} {answer}");
        };
        assert_eq!(*rows, 1, "stored once: {sent:?}");
        assert_eq!(
            answer["counted_as"].as_str(),
            Some(counted.as_str()),
            "{answer}"
        );
        assert_eq!(
            answer["millicredits_charged"].as_i64().unwrap_or(0),
            *milli,
            "{answer}"
        );
    }
}
