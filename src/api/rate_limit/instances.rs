//! Instances announce themselves in `portal_instances` with a heartbeat, so each knows how many
//! share the database and takes its share of every rate limit. One statement per instance per
//! heartbeat (an upsert of its row, the removal of instances that stopped beating, and the count,
//! together); nothing per request.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use uuid::Uuid;

/// Beats missed before an instance counts as gone.
const MISSED_BEATS: u32 = 3;

/// Records this instance's heartbeat and answers how many instances are live (itself included).
pub async fn beat(pool: &PgPool, id: Uuid, every: Duration) -> sqlx::Result<u32> {
    let stale = every * MISSED_BEATS;
    let others: i64 = sqlx::query_scalar(
        "WITH beat AS (
             INSERT INTO portal_instances (id) VALUES ($1)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
         ), gone AS (
             DELETE FROM portal_instances
             WHERE heartbeat_at < now() - make_interval(secs => $2) AND id <> $1
         )
         SELECT count(*) FROM portal_instances
         WHERE id <> $1 AND heartbeat_at >= now() - make_interval(secs => $2)",
    )
    .bind(id)
    .bind(stale.as_secs_f64())
    .fetch_one(pool)
    .await?;
    Ok(u32::try_from(others).unwrap_or(u32::MAX - 1) + 1)
}

/// Removes this instance's row at shutdown, so the others take its share at their next beat.
pub async fn leave(pool: &PgPool, id: Uuid) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM portal_instances WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?;
    Ok(())
}

/// Beats every `every` and keeps `live` up to date. A failed beat keeps the last count (the
/// database is unreachable; the API's requests fail on their own).
pub async fn beat_forever(
    pool: PgPool,
    id: Uuid,
    every: Duration,
    live: Arc<AtomicU32>,
    limits: Arc<super::limiter::RateLimits>,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match beat(&pool, id, every).await {
            Ok(count) => {
                let before = live.swap(count, Ordering::Relaxed);
                if before != count {
                    tracing::info!(instances = count, "live portal instances changed");
                }
            }
            Err(e) => tracing::warn!(error = %e, "instance heartbeat failed"),
        }
        limits.forget_idle();
    }
}
