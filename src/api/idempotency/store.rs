//! The idempotency keys in PostgreSQL (`api_idempotency_keys`): claiming a key for a request
//! (one statement when the key is new or expired), saving its answer, releasing it when the
//! answer is not saved, and deleting expired keys.

use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use super::{Fingerprint, Saved, KEEP_HOURS, LOST_AFTER_SECONDS};

/// What a key means for the request that sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// New (or expired, or lost in flight): this request runs and its answer is saved.
    Run,
    /// The same request finished before: answer this.
    Replay(Saved),
    /// The key was used for another method, path or body.
    Mismatch,
    /// The same request is still running.
    InProgress,
}

type Row = (
    String,
    String,
    Vec<u8>,
    Option<i16>,
    Option<Value>,
    Option<Vec<u8>>,
);

pub async fn claim(
    db: &PgPool,
    org_id: Uuid,
    key: &str,
    request: &Fingerprint,
) -> sqlx::Result<Claim> {
    // Twice at most: a key deleted as expired between the two statements is claimed again.
    for _ in 0..2 {
        let claimed: Option<bool> = sqlx::query_scalar(
            "INSERT INTO api_idempotency_keys AS k (org_id, key, method, target, body_sha256)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (org_id, key) DO UPDATE
                SET method = EXCLUDED.method, target = EXCLUDED.target,
                    body_sha256 = EXCLUDED.body_sha256, created_at = now(), locked_at = now(),
                    response_status = NULL, response_headers = NULL, response_body = NULL
              WHERE k.created_at < now() - make_interval(hours => $6)
                 OR (k.response_status IS NULL
                     AND k.locked_at < now() - make_interval(secs => $7)
                     AND k.method = EXCLUDED.method AND k.target = EXCLUDED.target
                     AND k.body_sha256 = EXCLUDED.body_sha256)
             RETURNING true",
        )
        .bind(org_id)
        .bind(key)
        .bind(&request.method)
        .bind(&request.target)
        .bind(&request.body_sha256[..])
        .bind(i32::try_from(KEEP_HOURS).unwrap_or(24))
        .bind(LOST_AFTER_SECONDS as f64)
        .fetch_optional(db)
        .await?;
        if claimed.is_some() {
            return Ok(Claim::Run);
        }
        let row: Option<Row> = sqlx::query_as(
            "SELECT method, target, body_sha256, response_status, response_headers, response_body
             FROM api_idempotency_keys WHERE org_id = $1 AND key = $2",
        )
        .bind(org_id)
        .bind(key)
        .fetch_optional(db)
        .await?;
        let Some((method, target, body_sha256, status, headers, body)) = row else {
            continue;
        };
        if method != request.method
            || target != request.target
            || body_sha256.as_slice() != request.body_sha256
        {
            return Ok(Claim::Mismatch);
        }
        let Some(status) = status else {
            return Ok(Claim::InProgress);
        };
        return Ok(Claim::Replay(Saved {
            status: u16::try_from(status).unwrap_or(500),
            headers: headers
                .and_then(|h| serde_json::from_value(h).ok())
                .unwrap_or_default(),
            body: body.unwrap_or_default(),
        }));
    }
    Ok(Claim::InProgress)
}

/// Saves the answer of the request that claimed the key.
pub async fn save(db: &PgPool, org_id: Uuid, key: &str, answer: &Saved) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE api_idempotency_keys
         SET response_status = $3, response_headers = $4, response_body = $5
         WHERE org_id = $1 AND key = $2",
    )
    .bind(org_id)
    .bind(key)
    .bind(i16::try_from(answer.status).unwrap_or(500))
    .bind(serde_json::to_value(&answer.headers).unwrap_or(Value::Null))
    .bind(&answer.body)
    .execute(db)
    .await?;
    Ok(())
}

/// Frees a key whose request ended without an answer worth saving (a 5xx, or it was dropped).
pub async fn release(db: &PgPool, org_id: Uuid, key: &str) -> sqlx::Result<()> {
    sqlx::query(
        "DELETE FROM api_idempotency_keys
         WHERE org_id = $1 AND key = $2 AND response_status IS NULL",
    )
    .bind(org_id)
    .bind(key)
    .execute(db)
    .await?;
    Ok(())
}

/// Deletes keys older than they are kept; returns how many.
pub async fn delete_expired(db: &PgPool) -> sqlx::Result<u64> {
    let done = sqlx::query(
        "DELETE FROM api_idempotency_keys WHERE created_at < now() - make_interval(hours => $1)",
    )
    .bind(i32::try_from(KEEP_HOURS).unwrap_or(24))
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Deletes expired keys every ten minutes (any instance may; they delete the same rows).
pub async fn delete_expired_forever(db: PgPool) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(600));
    loop {
        tick.tick().await;
        match delete_expired(&db).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "expired idempotency keys deleted"),
            Err(e) => tracing::warn!(error = %e, "deleting expired idempotency keys failed"),
        }
    }
}
