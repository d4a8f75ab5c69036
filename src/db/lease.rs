//! Jobs that must run on one instance at a time (snapshots, catch-up with Stripe, drift checks,
//! partition upkeep). A run holds a PostgreSQL session advisory lock on a connection of its own:
//! another instance that tries the same job meanwhile skips its turn, and if the holder crashes
//! PostgreSQL drops the lock with the connection, so no lease ever has to time out. Each run is
//! recorded in `job_runs` for the operators.

use std::future::Future;

use anyhow::Context;
use sqlx::{Connection, PgPool};

/// Who is running: the process, so an operator can tell two instances' runs apart.
fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "portal".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Runs `body` unless another instance is running the job called `job` right now, in which case
/// it returns `Ok(None)` without running it. The body's own error is recorded in `job_runs` and
/// returned.
pub async fn run_exclusive<T, Fut>(pool: &PgPool, job: &str, body: Fut) -> anyhow::Result<Option<T>>
where
    Fut: Future<Output = anyhow::Result<T>>,
{
    // A connection taken out of the pool for good: the lock lives exactly as long as this run,
    // and a pooled connection handed back while still holding it would leak the lock.
    let mut holder = pool
        .acquire()
        .await
        .context("no connection for a job lease")?
        .detach();
    let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 7))")
        .bind(job)
        .fetch_one(&mut holder)
        .await
        .context("taking a job lease")?;
    if !held {
        return Ok(None);
    }
    let run: i64 =
        sqlx::query_scalar("INSERT INTO job_runs (job, instance) VALUES ($1, $2) RETURNING id")
            .bind(job)
            .bind(instance_name())
            .fetch_one(pool)
            .await
            .context("recording a job run")?;
    let outcome = body.await;
    let error = outcome.as_ref().err().map(|e| format!("{e:#}"));
    let recorded =
        sqlx::query("UPDATE job_runs SET finished_at = now(), ok = $2, error = $3 WHERE id = $1")
            .bind(run)
            .bind(error.is_none())
            .bind(error.as_deref())
            .execute(pool)
            .await;
    if let Err(e) = recorded {
        tracing::warn!(job, error = %e, "recording the end of a job run failed");
    }
    // Closing the connection ends the session and with it the lock, even if the unlock below
    // is never reached.
    let _ = sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 7))")
        .bind(job)
        .execute(&mut holder)
        .await;
    let _ = holder.close().await;
    outcome.map(Some)
}

/// When each job last finished, and whether that run failed: for the operators' pages and the
/// metrics endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LastRun {
    pub job: String,
    pub instance: String,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    pub ok: Option<bool>,
    pub error: Option<String>,
    pub runs: i64,
    pub failures: i64,
}

pub async fn last_runs(pool: &PgPool) -> sqlx::Result<Vec<LastRun>> {
    sqlx::query_as(
        "SELECT DISTINCT ON (job) job, instance, started_at, finished_at, ok, error,
                count(*) OVER (PARTITION BY job) AS runs,
                count(*) FILTER (WHERE ok = false) OVER (PARTITION BY job) AS failures
         FROM job_runs ORDER BY job, started_at DESC",
    )
    .fetch_all(pool)
    .await
}
