//! The drift check: for each organization with a Stripe customer, fetch what Stripe says, compare
//! it with our projection ([`super::drift::compare`]), and keep `billing_drifts` true: a new
//! difference is recorded with its cause, one seen again is refreshed, and an open one no longer
//! found is closed, as `healed` (a late webhook or the catch-up fixed it) or `repaired` (after
//! an admin's repair).

use chrono::{DateTime, Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::drift::{compare, Difference, Sides};
use crate::billing::catalog::Catalog;
use crate::billing::repo::{self, Invoice};
use crate::stripe_gateway::Gateway;

/// Invoices the check compares: those of the last 90 days.
pub const INVOICE_DAYS: i64 = 90;

/// How an open drift was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    Healed,
    Repaired,
}

impl Resolution {
    fn as_str(self) -> &'static str {
        match self {
            Resolution::Healed => "healed",
            Resolution::Repaired => "repaired",
        }
    }
}

/// What a check of every organization found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CheckReport {
    pub organizations: usize,
    pub open: usize,
    pub closed: usize,
}

/// Checks every organization that has a Stripe customer. The caller holds the job's lease.
pub async fn check_all(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> anyhow::Result<CheckReport> {
    let orgs: Vec<(Uuid, String)> =
        sqlx::query_as("SELECT org_id, stripe_customer_id FROM billing_customers ORDER BY org_id")
            .fetch_all(pool)
            .await?;
    let mut report = CheckReport::default();
    for (org_id, customer) in &orgs {
        let (open, closed) = check_org(
            pool,
            gateway,
            catalog,
            (*org_id, customer),
            now,
            Resolution::Healed,
        )
        .await?;
        report.organizations += 1;
        report.open += open;
        report.closed += closed;
    }
    Ok(report)
}

/// Checks one organization; returns (open drifts, drifts it closed as `resolution`).
pub async fn check_org(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    (org_id, customer): (Uuid, &str),
    now: DateTime<Utc>,
    resolution: Resolution,
) -> anyhow::Result<(usize, usize)> {
    let since = now - Duration::days(INVOICE_DAYS);
    let state = gateway.customer_state(customer).await?;
    let stripe_invoices = if state.exists {
        gateway.invoices_since(customer, since).await?
    } else {
        Vec::new()
    };
    let ours = repo::subscription(pool, org_id).await?.map(|(s, _)| s);
    let our_invoices = invoices_since(pool, org_id, since).await?;
    let found = compare(
        &Sides {
            customer,
            customer_exists: state.exists,
            ours: ours.as_ref(),
            stripe: &state.subscriptions,
            our_invoices: &our_invoices,
            stripe_invoices: &stripe_invoices,
        },
        |key| catalog.plan_for_lookup_key(key).map(|p| p.key.clone()),
    );
    let mut tx = pool.begin().await?;
    for d in &found {
        let cause = cause(&mut tx, d).await?;
        sqlx::query(
            "INSERT INTO billing_drifts (org_id, field, object_id, ours, stripe, cause)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (org_id, field, object_id) WHERE resolved_at IS NULL
             DO UPDATE SET ours = EXCLUDED.ours, stripe = EXCLUDED.stripe,
                 cause = EXCLUDED.cause, seen_at = now()",
        )
        .bind(org_id)
        .bind(d.field)
        .bind(&d.object_id)
        .bind(&d.ours)
        .bind(&d.stripe)
        .bind(cause)
        .execute(&mut *tx)
        .await?;
    }
    let fields: Vec<&str> = found.iter().map(|d| d.field).collect();
    let objects: Vec<&str> = found.iter().map(|d| d.object_id.as_str()).collect();
    let closed = sqlx::query(
        "UPDATE billing_drifts SET resolved_at = now(), resolution = $2
         WHERE org_id = $1 AND resolved_at IS NULL
           AND (field, object_id) NOT IN (SELECT * FROM UNNEST($3::text[], $4::text[]))",
    )
    .bind(org_id)
    .bind(resolution.as_str())
    .bind(&fields)
    .bind(&objects)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok((found.len(), closed as usize))
}

async fn invoices_since(
    pool: &PgPool,
    org_id: Uuid,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<Invoice>> {
    Ok(repo::invoices(pool, org_id)
        .await?
        .into_iter()
        .filter(|i| i.created >= since)
        .collect())
}

/// Why we differ, from what the inbox holds about the object.
async fn cause(tx: &mut sqlx::PgConnection, d: &Difference) -> sqlx::Result<String> {
    if d.field == "customer" {
        return Ok(
            "Stripe has no such customer (deleted in Stripe, or made with another key).".into(),
        );
    }
    let newest: Option<(String, String, String, Option<String>)> = sqlx::query_as(
        "SELECT id, type, status, last_error FROM webhook_events
         WHERE payload->'data'->'object'->>'id' = $1
         ORDER BY created DESC, received_at DESC LIMIT 1",
    )
    .bind(&d.object_id)
    .fetch_optional(tx)
    .await?;
    Ok(match newest {
        None => "No webhook event about it was received: a missed or abandoned delivery.".into(),
        Some((id, _, status, _)) if status == "pending" => {
            format!("Event {id} is waiting to be applied.")
        }
        Some((id, _, status, error)) if status == "failed" => format!(
            "Event {id} failed to apply: {}",
            error.unwrap_or_else(|| "no error recorded".into())
        ),
        Some((id, kind, _, _)) => format!(
            "Changed in Stripe after the newest event we hold about it ({kind} {id}): its event has not arrived."
        ),
    })
}
