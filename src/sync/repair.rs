//! The platform admins' repair actions: resync an organization from Stripe, extend a trial by N
//! days, cancel a subscription now or at period end. Each needs a reason, changes Stripe first
//! (with an idempotency key from the action's own id) and then applies Stripe's answer through
//! the same path as a webhook, with the admin, the action and the reason stamped on the audit
//! log rows of that transaction.

use chrono::{Duration, Utc};
use sqlx::PgPool;
use uuid::Uuid;

use super::drift_check::{self, Resolution, INVOICE_DAYS};
use crate::audit::context::{self as audit, Actor, Stamp};
use crate::billing::catalog::Catalog;
use crate::billing::repo;
use crate::billing::service::apply_snapshot;
use crate::billing::subscription::Snapshot;
use crate::stripe_gateway::{Gateway, GatewayError};

/// Longest reason kept.
pub const MAX_REASON: usize = 500;
/// Most days a trial can be extended by at once.
pub const MAX_TRIAL_DAYS: i64 = 90;

/// What the repair works with.
#[derive(Clone, Copy)]
pub struct RepairDeps<'a> {
    pub db: &'a PgPool,
    pub stripe: &'a Gateway,
    pub catalog: &'a Catalog,
}

/// Who asks, for which organization, and why (checked by [`reason`]).
pub struct Request<'a> {
    pub admin: Uuid,
    pub org_id: Uuid,
    pub reason: &'a str,
}

#[derive(Debug, thiserror::Error)]
pub enum RepairError {
    /// A field is wrong; nothing changed.
    #[error("{message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("the organization has no Stripe customer yet")]
    NoCustomer,
    #[error("the organization has no subscription")]
    NoSubscription,
    #[error("only a trialing subscription can have its trial extended (this one is {0})")]
    NotTrialing(String),
    #[error("the subscription has already ended")]
    Ended,
    #[error(transparent)]
    Stripe(#[from] GatewayError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// How to cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelWhen {
    Now,
    AtPeriodEnd,
}

/// A reason as typed: required, at most [`MAX_REASON`] characters, no control characters.
pub fn reason(typed: &str) -> Result<&str, RepairError> {
    let typed = typed.trim();
    let invalid = |message: &str| RepairError::Invalid {
        field: "reason",
        message: message.to_owned(),
    };
    if typed.is_empty() {
        return Err(invalid("Give a reason: it is kept in the audit log."));
    }
    if typed.chars().count() > MAX_REASON || crate::web::hygiene::has_control_chars(typed) {
        return Err(invalid(
            "The reason must be at most 500 characters without control characters.",
        ));
    }
    Ok(typed)
}

/// Days as typed: a whole number from 1 to [`MAX_TRIAL_DAYS`].
pub fn trial_days(typed: &str) -> Result<i64, RepairError> {
    match typed.trim().parse::<i64>() {
        Ok(days) if (1..=MAX_TRIAL_DAYS).contains(&days) => Ok(days),
        _ => Err(RepairError::Invalid {
            field: "days",
            message: format!("Days must be a whole number from 1 to {MAX_TRIAL_DAYS}."),
        }),
    }
}

fn stamp(request: &Request<'_>, action: &str) -> Stamp {
    Stamp::of(Actor::User(request.admin))
        .action(action)
        .reason(request.reason)
}

/// The subscription row as the audit log keeps it.
async fn subscription_row(
    db: impl sqlx::PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Option<serde_json::Value>> {
    sqlx::query_scalar("SELECT to_jsonb(s) FROM subscriptions s WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(db)
        .await
}

/// Applies Stripe's answer as the current truth, stamped with the admin's action. `before` is
/// the subscription as it was before Stripe was asked: Stripe's own webhook for the change may
/// be applied first, leaving nothing for this transaction's triggers to record, so the action is
/// then recorded by hand, from the row before the action to the row after it.
async fn apply(
    deps: RepairDeps<'_>,
    stamp: &Stamp,
    request: &Request<'_>,
    before: Option<serde_json::Value>,
    snapshot: &Snapshot,
) -> Result<(), RepairError> {
    let source = stamp.action.as_deref().unwrap_or("repair");
    // The admin's action and reason, not just the signed-in user, are the actor here.
    audit::acting(stamp.clone(), async {
        let mut tx = deps.db.begin().await?;
        audit::write(&mut tx, stamp).await?;
        apply_snapshot(&mut tx, deps.catalog, snapshot, None, source, Utc::now()).await?;
        let recorded: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM audit_log WHERE org_id = $1 AND action = $2
                            AND entity = 'subscriptions' AND at = now())",
        )
        .bind(request.org_id)
        .bind(source)
        .fetch_one(&mut *tx)
        .await?;
        if !recorded {
            let after = subscription_row(&mut *tx, request.org_id).await?;
            audit::record(
                &mut tx,
                stamp,
                Some(request.org_id),
                ("subscriptions", &snapshot.id),
                before.unwrap_or(serde_json::Value::Null),
                after.unwrap_or(serde_json::Value::Null),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    })
    .await
}

/// Refetches the organization's subscription and recent invoices from Stripe and applies them;
/// then checks it again, closing the drifts that are gone as repaired. Returns the drifts left.
pub async fn resync(deps: RepairDeps<'_>, request: &Request<'_>) -> Result<usize, RepairError> {
    let stamp = stamp(request, "admin.resync");
    let customer = repo::customer_of(deps.db, request.org_id)
        .await?
        .ok_or(RepairError::NoCustomer)?;
    let state = deps.stripe.customer_state(&customer).await?;
    let ours = repo::subscription(deps.db, request.org_id)
        .await?
        .map(|(s, _)| s);
    let current = super::drift::current(ours.as_ref(), &state.subscriptions);
    let since = Utc::now() - Duration::days(INVOICE_DAYS);
    let invoices = if state.exists {
        deps.stripe.invoices_since(&customer, since).await?
    } else {
        Vec::new()
    };
    let pairs: Vec<(Uuid, &repo::Invoice)> = invoices.iter().map(|i| (request.org_id, i)).collect();
    audit::acting(stamp.clone(), async {
        let mut tx = deps.db.begin().await?;
        audit::write(&mut tx, &stamp).await?;
        if let Some(snapshot) = current {
            apply_snapshot(
                &mut tx,
                deps.catalog,
                snapshot,
                None,
                "admin.resync",
                Utc::now(),
            )
            .await?;
        }
        repo::upsert_invoices(&mut tx, &pairs).await?;
        tx.commit().await?;
        Ok::<(), RepairError>(())
    })
    .await?;
    let open_before: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM billing_drifts WHERE org_id = $1 AND resolved_at IS NULL",
    )
    .bind(request.org_id)
    .fetch_one(deps.db)
    .await?;
    let (left, _) = drift_check::check_org(
        deps.db,
        deps.stripe,
        deps.catalog,
        (request.org_id, &customer),
        Utc::now(),
        Resolution::Repaired,
    )
    .await?;
    // The resync itself is recorded even when it found nothing to change.
    let mut tx = deps.db.begin().await?;
    audit::record(
        &mut tx,
        &stamp,
        Some(request.org_id),
        ("billing_drifts", &customer),
        serde_json::json!({ "open_drifts": open_before }),
        serde_json::json!({ "open_drifts": left }),
    )
    .await?;
    tx.commit().await?;
    Ok(left)
}

/// Moves the trial's end `days` later, in Stripe and then here. `action_id` keys the Stripe call.
pub async fn extend_trial(
    deps: RepairDeps<'_>,
    request: &Request<'_>,
    days: i64,
    action_id: Uuid,
) -> Result<Snapshot, RepairError> {
    let (sub, _) = repo::subscription(deps.db, request.org_id)
        .await?
        .ok_or(RepairError::NoSubscription)?;
    if sub.status != "trialing" {
        return Err(RepairError::NotTrialing(sub.status));
    }
    let before = subscription_row(deps.db, request.org_id).await?;
    let end = sub
        .trial_end
        .ok_or_else(|| RepairError::NotTrialing(sub.status.clone()))?
        + Duration::days(days);
    let snapshot = deps
        .stripe
        .set_trial_end(
            &sub.stripe_subscription_id,
            end.timestamp(),
            &action_id.to_string(),
        )
        .await?;
    let stamp = stamp(request, "admin.extend_trial");
    apply(deps, &stamp, request, before, &snapshot).await?;
    Ok(snapshot)
}

/// Cancels the subscription now or at the end of its period, in Stripe and then here.
pub async fn cancel(
    deps: RepairDeps<'_>,
    request: &Request<'_>,
    when: CancelWhen,
) -> Result<Snapshot, RepairError> {
    let (sub, _) = repo::subscription(deps.db, request.org_id)
        .await?
        .ok_or(RepairError::NoSubscription)?;
    if !super::drift::is_live(&sub.status) {
        return Err(RepairError::Ended);
    }
    let before = subscription_row(deps.db, request.org_id).await?;
    let (snapshot, action) = match when {
        CancelWhen::Now => (
            deps.stripe.cancel_now(&sub.stripe_subscription_id).await?,
            "admin.cancel_now",
        ),
        CancelWhen::AtPeriodEnd => (
            deps.stripe
                .set_cancel_at_period_end(&sub.stripe_subscription_id, true)
                .await?,
            "admin.cancel_at_period_end",
        ),
    };
    let stamp = stamp(request, action);
    apply(deps, &stamp, request, before, &snapshot).await?;
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_is_required_and_bounded() {
        assert!(reason("  ").is_err());
        assert!(reason(&"x".repeat(501)).is_err());
        assert!(reason("bad\u{7}bell").is_err());
        assert_eq!(reason("  customer asked ").ok(), Some("customer asked"));
    }

    #[test]
    fn trial_days_are_whole_and_bounded() {
        assert_eq!(trial_days("7").ok(), Some(7));
        for bad in ["0", "91", "-1", "1.5", "", "seven"] {
            assert!(trial_days(bad).is_err(), "{bad}");
        }
    }
}
