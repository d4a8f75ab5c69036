//! Gauges on the server: reading an organization's current counts (the values the product set,
//! and its member count) and setting one within the plan's limit. Changes to gauges and to
//! members take turns on the organization's row (`lock_limits`), so two writers cannot both
//! pass the same limit check. The rules are in [`crate::billing::limits`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};
use uuid::Uuid;

use crate::api::entitlements::EntitlementsCache;
use crate::billing::catalog::{Catalog, Limit};
use crate::billing::limits::{check_gauge, GaugeRefusal, GaugeValues};
use crate::billing::repo as billing;
use crate::billing::subscription::effective_plan;

/// Locks the organization's row until the transaction ends, for changes that must respect a
/// limit (gauges, members). `FOR NO KEY UPDATE` leaves the foreign-key checks of other writers
/// (usage actions, say) unblocked. False when there is no such organization.
pub async fn lock_limits(tx: &mut PgConnection, org_id: Uuid) -> sqlx::Result<bool> {
    let found: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM organizations WHERE id = $1 FOR NO KEY UPDATE")
            .bind(org_id)
            .fetch_optional(tx)
            .await?;
    Ok(found.is_some())
}

/// Every gauge's current value, in one statement.
pub async fn values(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<GaugeValues> {
    let rows: Vec<(Option<String>, i64)> = sqlx::query_as(
        "SELECT meter, value FROM gauge_values WHERE org_id = $1
         UNION ALL
         SELECT NULL, count(*) FROM memberships WHERE org_id = $1",
    )
    .bind(org_id)
    .fetch_all(db)
    .await?;
    let mut values = GaugeValues {
        reported: BTreeMap::new(),
        members: 0,
    };
    for (meter, value) in rows {
        let value = u64::try_from(value).unwrap_or(0);
        match meter {
            Some(meter) => {
                values.reported.insert(meter, value);
            }
            None => values.members = value,
        }
    }
    Ok(values)
}

/// A gauge that was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GaugeSet {
    pub meter: String,
    pub value: u64,
    pub previous: u64,
    /// The plan's limit for it.
    pub limit: Limit,
}

#[derive(Debug, thiserror::Error)]
pub enum GaugeError {
    #[error("gauge refused: {0:?}")]
    Refused(GaugeRefusal),
    /// Above [`MAX_GAUGE_VALUE`].
    #[error("a gauge holds at most {MAX_GAUGE_VALUE}")]
    TooLarge,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The largest count a gauge holds: far above any plan's limit, well inside PostgreSQL's bigint.
pub const MAX_GAUGE_VALUE: u64 = 1_000_000_000_000;

/// Sets the organization's `meter` to `value` if its plan (as it stands at `now`) allows it; a
/// refusal changes nothing.
pub async fn set(
    db: &PgPool,
    catalog: &Catalog,
    cache: &EntitlementsCache,
    org_id: Uuid,
    meter: &str,
    value: u64,
    now: DateTime<Utc>,
) -> Result<GaugeSet, GaugeError> {
    if value > MAX_GAUGE_VALUE {
        return Err(GaugeError::TooLarge);
    }
    let stored_value = i64::try_from(value).map_err(|_| GaugeError::TooLarge)?;
    let mut tx = db.begin().await?;
    lock_limits(&mut tx, org_id).await?;
    let stored = billing::subscription(&mut *tx, org_id)
        .await?
        .map(|(s, _)| s);
    let plan = effective_plan(catalog, stored.as_ref(), now);
    let limit = check_gauge(catalog, plan, meter, value).map_err(GaugeError::Refused)?;
    let previous: Option<i64> =
        sqlx::query_scalar("SELECT value FROM gauge_values WHERE org_id = $1 AND meter = $2")
            .bind(org_id)
            .bind(meter)
            .fetch_optional(&mut *tx)
            .await?;
    sqlx::query(
        "INSERT INTO gauge_values (org_id, meter, value) VALUES ($1, $2, $3)
         ON CONFLICT (org_id, meter) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
    )
    .bind(org_id)
    .bind(meter)
    .bind(stored_value)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    cache.forget(&[org_id]);
    Ok(GaugeSet {
        meter: meter.to_owned(),
        value,
        previous: previous.and_then(|p| u64::try_from(p).ok()).unwrap_or(0),
        limit,
    })
}
