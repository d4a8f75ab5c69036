//! The sync jobs as background tasks: the catch-up (at start-up, then every
//! `CATCH_UP_EVERY_MINUTES`) and the drift check (every `DRIFT_CHECK_EVERY_MINUTES`), each on one
//! instance at a time through the job lease; an instance that finds the lease held skips its turn.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sqlx::PgPool;
use tokio::sync::Notify;

use super::catch_up::{self, CatchUp};
use super::drift_check::{self, CheckReport};
use crate::billing::catalog::Catalog;
use crate::db::lease::run_exclusive;
use crate::stripe_gateway::Gateway;

pub const CATCH_UP_JOB: &str = "stripe-catch-up";
pub const DRIFT_JOB: &str = "stripe-drift-check";

/// One catch-up, unless another instance is running one (`None`). Wakes the webhook workers
/// when it stored events.
pub async fn catch_up_once(
    pool: &PgPool,
    gateway: &Gateway,
    wake: &Notify,
) -> anyhow::Result<Option<CatchUp>> {
    let ran = run_exclusive(pool, CATCH_UP_JOB, catch_up::run(pool, gateway, Utc::now())).await?;
    if ran.is_some_and(|r| r.inserted > 0) {
        wake.notify_waiters();
        wake.notify_one();
    }
    Ok(ran)
}

/// One drift check of every organization, unless another instance is running one (`None`).
pub async fn drift_once(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
) -> anyhow::Result<Option<CheckReport>> {
    run_exclusive(
        pool,
        DRIFT_JOB,
        drift_check::check_all(pool, gateway, catalog, Utc::now()),
    )
    .await
}

pub async fn catch_up_forever(pool: PgPool, gateway: Gateway, wake: Arc<Notify>, every: Duration) {
    loop {
        match catch_up_once(&pool, &gateway, &wake).await {
            Ok(Some(run)) if run.inserted > 0 => tracing::info!(
                listed = run.listed,
                inserted = run.inserted,
                "catch-up stored events the webhook endpoint never received"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "catch-up with Stripe failed"),
        }
        tokio::time::sleep(every).await;
    }
}

pub async fn drift_forever(pool: PgPool, gateway: Gateway, catalog: Arc<Catalog>, every: Duration) {
    loop {
        // The first check waits a period: at start-up the catch-up runs first.
        tokio::time::sleep(every).await;
        match drift_once(&pool, &gateway, &catalog).await {
            Ok(Some(report)) if report.open > 0 => tracing::warn!(
                organizations = report.organizations,
                open = report.open,
                "drift between our billing tables and Stripe"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = format!("{e:#}"), "drift check failed"),
        }
    }
}

/// What the sync jobs need, for [`spawn`].
pub struct Sync {
    pub pool: PgPool,
    pub gateway: Gateway,
    pub catalog: Arc<Catalog>,
    pub wake: Arc<Notify>,
    pub catch_up_every: Duration,
    pub drift_every: Duration,
}

/// Starts the catch-up and the drift check as background tasks.
pub fn spawn(s: Sync) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(catch_up_forever(
            s.pool.clone(),
            s.gateway.clone(),
            s.wake,
            s.catch_up_every,
        )),
        tokio::spawn(drift_forever(s.pool, s.gateway, s.catalog, s.drift_every)),
    ]
}
