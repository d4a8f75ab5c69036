//! Group commit for the webhook inbox: concurrent deliveries are written together, one
//! multi-row INSERT and one durable commit for many events, and each delivery is answered only
//! after the commit that holds it. While a writer commits, the next deliveries gather in the
//! queue; several writers (`WEBHOOK_WRITERS`) can take turns, so one gathers while another
//! commits, which pays off when commits are slow. An event the database refuses fails alone: the
//! batch is then stored event by event.

use std::sync::Arc;

use sqlx::PgPool;
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::task::JoinHandle;

use crate::db::refused_by_database;

/// Most events one commit carries.
const MAX_BATCH: usize = 128;

/// A verified event, ready to store.
pub struct NewEvent {
    pub id: String,
    pub kind: String,
    pub api_version: Option<String>,
    pub created: i64,
    /// The event's JSON text, exactly as received.
    pub payload: String,
}

struct Job {
    event: NewEvent,
    done: oneshot::Sender<Result<(), String>>,
}

#[derive(Clone)]
pub struct InboxWriter {
    jobs: mpsc::Sender<Job>,
}

impl InboxWriter {
    /// Starts `writers` writer tasks on `pool`.
    pub fn start(pool: PgPool, writers: usize) -> (Self, Vec<JoinHandle<()>>) {
        let (jobs, queue) = mpsc::channel::<Job>(4096);
        let queue = Arc::new(Mutex::new(queue));
        let handles = (0..writers.max(1))
            .map(|_| tokio::spawn(write_forever(pool.clone(), queue.clone())))
            .collect();
        (Self { jobs }, handles)
    }

    /// Stores the event durably (a duplicate id changes nothing); returns once committed.
    pub async fn store(&self, event: NewEvent) -> Result<(), String> {
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { event, done })
            .await
            .map_err(|_| "the inbox writer stopped".to_owned())?;
        answer
            .await
            .map_err(|_| "the inbox writer stopped".to_owned())?
    }
}

async fn write_forever(pool: PgPool, queue: Arc<Mutex<mpsc::Receiver<Job>>>) {
    loop {
        // Take one job (waiting if none), then whatever else is already queued.
        let batch = {
            let mut queue = queue.lock().await;
            let Some(first) = queue.recv().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            batch
        };
        let events: Vec<&NewEvent> = batch.iter().map(|j| &j.event).collect();
        match insert(&pool, &events).await {
            Ok(()) => {
                for job in batch {
                    let _ = job.done.send(Ok(()));
                }
            }
            Err(e) if batch.len() == 1 || !refused_by_database(&e) => {
                // Alone, or the database is unreachable: storing each again would only wait on
                // it once per event.
                for job in batch {
                    let _ = job.done.send(Err(e.to_string()));
                }
            }
            Err(e) => {
                // One event the database refuses must not fail the deliveries batched with it:
                // the statement rolled back as a whole, so each event is stored again on its
                // own and only the refused one is answered with an error.
                tracing::warn!(error = %e, events = batch.len(),
                    "a group commit of webhook events failed; storing them one by one");
                for job in batch {
                    let outcome = insert(&pool, &[&job.event])
                        .await
                        .map_err(|e| e.to_string());
                    let _ = job.done.send(outcome);
                }
            }
        }
    }
}

async fn insert(pool: &PgPool, batch: &[&NewEvent]) -> sqlx::Result<()> {
    let ids: Vec<&str> = batch.iter().map(|e| e.id.as_str()).collect();
    let kinds: Vec<&str> = batch.iter().map(|e| e.kind.as_str()).collect();
    let versions: Vec<Option<&str>> = batch.iter().map(|e| e.api_version.as_deref()).collect();
    let created: Vec<i64> = batch.iter().map(|e| e.created).collect();
    let payloads: Vec<&str> = batch.iter().map(|e| e.payload.as_str()).collect();
    sqlx::query(
        "INSERT INTO webhook_events (id, type, api_version, created, payload)
         SELECT id, kind, version, created, payload::jsonb
         FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::text[])
              AS t(id, kind, version, created, payload)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(ids)
    .bind(kinds)
    .bind(versions)
    .bind(created)
    .bind(payloads)
    .execute(pool)
    .await?;
    Ok(())
}
