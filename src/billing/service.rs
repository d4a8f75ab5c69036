//! Applying what Stripe says to our projection, idempotently and in order, from webhooks and from
//! the Checkout success page alike; and ending grace periods that ran out.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use super::catalog::Catalog;
use super::repo::{self, Upsert};
use super::subscription::{Snapshot, Stored, FETCHED, GRACE_DAYS};
use crate::stripe_gateway::Gateway;

/// Statuses in which a subscription still serves the organization.
fn is_live(status: &str) -> bool {
    matches!(
        status,
        "trialing" | "active" | "past_due" | "unpaid" | "incomplete"
    )
}

/// The organization a subscription belongs to: by its customer, else its `org_id` metadata.
pub async fn org_for(db: &mut PgConnection, snapshot: &Snapshot) -> sqlx::Result<Option<Uuid>> {
    if let Some(org) = repo::org_of_customer(&mut *db, &snapshot.customer).await? {
        return Ok(Some(org));
    }
    Ok(snapshot.org_hint.as_deref().and_then(|h| h.parse().ok()))
}

/// Makes concurrent appliers for one organization (webhook workers, the success page, plan
/// changes) take turns until the transaction ends, including when no row exists yet (which a
/// row lock cannot cover).
pub async fn lock_org(db: &mut PgConnection, org_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(org_id.to_string())
        .execute(db)
        .await?;
    Ok(())
}

/// Applies a subscription state. `version` is the `created` of the event it came from; a state
/// fetched from Stripe passes `None`: it is applied as the current truth and marked so that the
/// next event about it is settled by another fetch (it may be older than what we now hold). Returns the organization, or `None` when the subscription is not one of ours.
pub async fn apply_snapshot(
    db: &mut PgConnection,
    catalog: &Catalog,
    snapshot: &Snapshot,
    version: Option<i64>,
    source: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<Uuid>> {
    let Some(org_id) = org_for(db, snapshot).await? else {
        return Ok(None);
    };
    lock_org(db, org_id).await?;
    crate::audit::context::stamp(&mut *db).await?;
    let existing = repo::subscription_for_update(db, org_id).await?;
    if let Some((stored, _)) = &existing {
        // A late event about an old subscription must not replace the live one.
        if stored.stripe_subscription_id != snapshot.id
            && is_live(&stored.status)
            && !is_live(&snapshot.status)
        {
            return Ok(Some(org_id));
        }
    }
    let plan_key = match snapshot.price_lookup_key.as_deref() {
        Some(key) => catalog
            .plan_for_lookup_key(key)
            .map(|p| p.key.clone())
            .ok_or_else(|| anyhow::anyhow!("price lookup key {key} is not in the plan catalog"))?,
        None => anyhow::bail!("subscription {} has no price lookup key", snapshot.id),
    };
    let same = existing
        .as_ref()
        .filter(|(s, _)| s.stripe_subscription_id == snapshot.id);
    let past_due = matches!(snapshot.status.as_str(), "past_due" | "unpaid");
    let past_due_since = match same.and_then(|(s, _)| s.past_due_since) {
        Some(since) if past_due => Some(since),
        _ if past_due => Some(now),
        _ => None,
    };
    // A kept (downgraded-from) plan lasts while the subscription lives and the plan differs.
    let kept = same
        .and_then(|(s, _)| s.kept.clone())
        .filter(|(kept, _)| is_live(&snapshot.status) && *kept != plan_key);
    let stored = Stored {
        stripe_subscription_id: snapshot.id.clone(),
        plan_key,
        status: snapshot.status.clone(),
        trial_end: snapshot.trial_end,
        current_period_start: snapshot.current_period_start,
        current_period_end: snapshot.current_period_end,
        cancel_at_period_end: snapshot.cancel_at_period_end,
        past_due_since,
        kept,
    };
    let previous_version = same.map(|(_, v)| *v).unwrap_or(0);
    let version = match version {
        Some(created) => created.max(previous_version),
        None => FETCHED,
    };
    let changed = existing.as_ref().is_none_or(|(s, _)| {
        s.status != stored.status
            || s.plan_key != stored.plan_key
            || s.stripe_subscription_id != stored.stripe_subscription_id
    });
    repo::upsert_subscription(
        db,
        Upsert {
            org_id,
            stored: &stored,
            version,
        },
    )
    .await?;
    if changed {
        repo::record_history(db, org_id, &stored, source).await?;
    }
    super::lifecycle_mail::enqueue(
        db,
        catalog,
        org_id,
        existing.as_ref().map(|(s, _)| s),
        &stored,
        source,
    )
    .await?;
    Ok(Some(org_id))
}

/// Fetches a subscription from Stripe and applies it as the current truth.
pub async fn refresh(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    subscription_id: &str,
    source: &str,
) -> anyhow::Result<Option<Uuid>> {
    let snapshot = gateway.retrieve_subscription(subscription_id).await?;
    let mut tx = pool.begin().await?;
    let org = apply_snapshot(&mut tx, catalog, &snapshot, None, source, Utc::now()).await?;
    tx.commit().await?;
    Ok(org)
}

/// Cancels in Stripe every subscription whose grace period ran out before `now`; the
/// organization is then on the free plan.
pub async fn end_expired_grace_periods(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    super::lifecycle_mail::remind_grace_ending(pool, catalog, now).await?;
    let cutoff = now - chrono::Duration::days(GRACE_DAYS);
    let expired = repo::grace_expired(pool, cutoff).await?;
    for (org_id, sub_id) in &expired {
        let snapshot = gateway.cancel_now(sub_id).await?;
        let mut tx = pool.begin().await?;
        apply_snapshot(&mut tx, catalog, &snapshot, None, "grace period ended", now).await?;
        tx.commit().await?;
        tracing::info!(%org_id, subscription = %sub_id, "grace period ended: moved to the free plan");
    }
    Ok(expired.len())
}

/// The organization's Stripe customer, created once (the idempotency key is the org id, so a
/// retry or a race ends with the same customer).
pub async fn ensure_customer(
    pool: &PgPool,
    gateway: &Gateway,
    org_id: Uuid,
    name: &str,
    email: &str,
) -> anyhow::Result<String> {
    if let Some(customer) = repo::customer_of(pool, org_id).await? {
        return Ok(customer);
    }
    let created = gateway.create_customer(org_id, name, email).await?;
    let mut conn = pool.acquire().await?;
    Ok(repo::save_customer(&mut conn, org_id, &created).await?)
}

/// One trial per card: a trialing organization whose card (added during the trial, usually in
/// the customer portal) already had a trial in another organization loses its trial at once
/// (the subscription is canceled, so the organization is on Free and can still subscribe and
/// pay). Otherwise the card is recorded on the trial's grant. Runs in the background; returns how
/// many trials it ended.
pub async fn check_trial_cards(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    now: DateTime<Utc>,
) -> anyhow::Result<usize> {
    let mut ended = 0;
    for (grant_id, org_id, customer, sub_id) in repo::trials_without_card(pool).await? {
        let Some(fingerprint) = gateway.default_card_fingerprint(&customer).await? else {
            continue;
        };
        let mut tx = pool.begin().await?;
        repo::lock_fingerprint(&mut tx, &fingerprint).await?;
        let reused = repo::card_had_trial(&mut *tx, &fingerprint, Some(grant_id)).await?;
        let first = repo::set_grant_card(&mut *tx, grant_id, &fingerprint).await?;
        tx.commit().await?;
        if !first {
            // Another instance's check got here first and did what was needed.
            continue;
        }
        if reused {
            let snapshot = gateway.cancel_now(&sub_id).await?;
            let mut tx = pool.begin().await?;
            apply_snapshot(
                &mut tx,
                catalog,
                &snapshot,
                None,
                "trial ended: the card already had a trial",
                now,
            )
            .await?;
            tx.commit().await?;
            tracing::info!(%org_id, subscription = %sub_id, "trial ended: the card already had a trial");
            ended += 1;
        }
    }
    Ok(ended)
}
