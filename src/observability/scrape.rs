//! Figures read from the database when `/metrics` is scraped: they describe shared state (the
//! webhook inbox, background jobs) that any instance may have changed, and the pool this
//! instance holds.

use sqlx::PgPool;

/// Sets the gauges that come from the database and the pool.
pub async fn read_database_figures(pool: &PgPool) -> sqlx::Result<()> {
    metrics::gauge!("db_pool_connections").set(f64::from(pool.size()));
    metrics::gauge!("db_pool_idle_connections").set(pool.num_idle() as f64);
    metrics::gauge!("db_pool_max_connections").set(f64::from(pool.options().get_max_connections()));

    let inbox: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM webhook_events GROUP BY status")
            .fetch_all(pool)
            .await?;
    for status in ["pending", "applied", "ignored", "failed"] {
        let count = inbox
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("webhook_inbox_events", "status" => status).set(count as f64);
    }
    // How far behind the appliers are (0 when nothing waits), and how long events took from
    // Stripe creating them to being applied, over the last hour.
    let (oldest_pending, lag_median, lag_p95): (f64, Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT coalesce((SELECT extract(epoch FROM now() - min(received_at))::float8
                          FROM webhook_events WHERE status = 'pending'), 0),
                percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
                percentile_cont(0.95) WITHIN GROUP (ORDER BY lag)
         FROM (SELECT extract(epoch FROM applied_at - to_timestamp(created))::float8 AS lag
               FROM webhook_events
               WHERE applied_at > now() - interval '1 hour') recent",
    )
    .fetch_one(pool)
    .await?;
    metrics::gauge!("webhook_inbox_oldest_pending_seconds").set(oldest_pending);
    metrics::gauge!("webhook_apply_lag_seconds", "quantile" => "0.5")
        .set(lag_median.unwrap_or(0.0));
    metrics::gauge!("webhook_apply_lag_seconds", "quantile" => "0.95").set(lag_p95.unwrap_or(0.0));

    let outbox: Vec<(String, i64)> =
        sqlx::query_as("SELECT status, count(*) FROM notification_outbox GROUP BY status")
            .fetch_all(pool)
            .await?;
    for status in ["pending", "sent", "failed", "suppressed"] {
        let count = outbox
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        metrics::gauge!("notification_outbox_messages", "status" => status).set(count as f64);
    }

    for run in crate::db::lease::last_runs(pool).await? {
        let job = run.job.clone();
        metrics::gauge!("job_runs", "job" => job.clone()).set(run.runs as f64);
        metrics::gauge!("job_failures", "job" => job.clone()).set(run.failures as f64);
        metrics::gauge!("job_last_run_ok", "job" => job).set(if run.ok == Some(true) {
            1.0
        } else {
            0.0
        });
    }
    Ok(())
}
