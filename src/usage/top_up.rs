//! Auto top-up, off the request path: when an organization that turned it on falls below its
//! threshold, a pending top-up is queued (at most one in flight per organization, enforced by a
//! unique index; at most the monthly cap per calendar month), then charged off-session on the
//! saved card. After [`MAX_FAILURES`] failed charges in a row it turns itself off and the owners
//! get a message.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::ledger::{self, Entry, Kind, Purchase};
use crate::billing::catalog::Catalog;
use crate::billing::repo as billing_repo;
use crate::stripe_gateway::credit_calls::ChargeOutcome;
use crate::stripe_gateway::Gateway;

/// Failed charges in a row after which auto top-up turns itself off.
pub const MAX_FAILURES: i32 = 3;

#[derive(Clone)]
pub struct TopUpConfig {
    /// How long after a failed charge the next one may be tried.
    pub retry_after: Duration,
}

pub async fn work_forever(
    pool: PgPool,
    gateway: Gateway,
    catalog: Arc<Catalog>,
    wake: Arc<Notify>,
    config: TopUpConfig,
    mut stop: crate::shutdown::Stop,
) {
    while !stop.requested() {
        match run_once(&pool, &gateway, &catalog, &config).await {
            Ok(0) => {
                stop.idle(Duration::from_secs(30), Some(&wake)).await;
            }
            Ok(_) => {}
            Err(e) => {
                // Stripe or the database out of reach: the purchase stays pending (nothing
                // charged twice: its idempotency key is the purchase's id) and is tried again.
                tracing::warn!(error = format!("{e:#}"), "auto top-up pass failed");
                stop.idle(Duration::from_secs(5), None).await;
            }
        }
    }
}

/// Queues the top-ups that are due and charges the pending ones. Returns how many it charged.
pub async fn run_once(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    config: &TopUpConfig,
) -> anyhow::Result<usize> {
    let Some(pack) = &catalog.credit_pack else {
        return Ok(0);
    };
    sqlx::query(
        "INSERT INTO credit_purchases (id, org_id, source, packs, millicredits, amount_cents,
             currency, status)
         SELECT gen_random_uuid(), c.org_id, 'auto_top_up', c.top_up_packs,
                c.top_up_packs * $1 * 1000, c.top_up_packs * $2, $3, 'pending'
         FROM credit_accounts c
         WHERE c.auto_top_up
           AND c.balance_millicredits < c.top_up_below_credits * 1000
           AND (c.top_up_not_before IS NULL OR c.top_up_not_before <= now())
           AND EXISTS (SELECT 1 FROM billing_customers b WHERE b.org_id = c.org_id)
           AND (SELECT count(*) FROM credit_purchases p
                WHERE p.org_id = c.org_id AND p.source = 'auto_top_up'
                  AND p.status IN ('paid', 'pending')
                  AND p.created_at >= date_trunc('month', now())) < c.top_up_monthly_cap
         ON CONFLICT DO NOTHING",
    )
    .bind(pack.credits)
    .bind(pack.price_cents)
    .bind(&catalog.currency)
    .execute(pool)
    .await?;

    let mut charged = 0;
    loop {
        let mut tx = pool.begin().await?;
        // The row stays locked while Stripe is called, so no other worker charges it too.
        let claimed: Option<Purchase> = sqlx::query_as(
            "SELECT id, org_id, source, packs, millicredits, amount_cents, currency, status,
                    checkout_session_id, payment_intent_id, refunded_cents,
                    refunded_millicredits, failure, created_at
             FROM credit_purchases
             WHERE source = 'auto_top_up' AND status = 'pending'
             ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(purchase) = claimed else {
            return Ok(charged);
        };
        let Some(customer) = billing_repo::customer_of(&mut *tx, purchase.org_id).await? else {
            fail(
                &mut tx,
                &purchase,
                "The organization has no Stripe customer.",
            )
            .await?;
            tx.commit().await?;
            continue;
        };
        let earlier: Option<(String,)> = sqlx::query_as(
            "SELECT payment_intent_id FROM credit_purchases
             WHERE org_id = $1 AND status = 'paid' AND payment_intent_id IS NOT NULL
             ORDER BY settled_at DESC LIMIT 1",
        )
        .bind(purchase.org_id)
        .fetch_optional(&mut *tx)
        .await?;
        let outcome = gateway
            .charge_top_up(
                purchase.org_id,
                purchase.id,
                &customer,
                earlier.as_ref().map(|(id,)| id.as_str()),
                purchase.amount_cents,
                &purchase.currency,
            )
            .await?;
        match outcome {
            ChargeOutcome::Succeeded { payment_intent_id } => {
                sqlx::query(
                    "UPDATE credit_purchases SET status = 'paid', payment_intent_id = $2,
                         settled_at = now()
                     WHERE id = $1",
                )
                .bind(purchase.id)
                .bind(&payment_intent_id)
                .execute(&mut *tx)
                .await?;
                ledger::adjust(
                    &mut tx,
                    Entry {
                        org_id: purchase.org_id,
                        kind: Kind::TopUp,
                        millicredits: purchase.millicredits,
                        reason: Some(&format!("Auto top-up: {}", ledger::pack_reason(&purchase))),
                        reference: Some(&purchase.id.to_string()),
                        actor_id: None,
                    },
                )
                .await?;
                sqlx::query("UPDATE credit_accounts SET top_up_failures = 0 WHERE org_id = $1")
                    .bind(purchase.org_id)
                    .execute(&mut *tx)
                    .await?;
                crate::notify::about_org(
                    &mut tx,
                    crate::notify::kinds::Kind::TopUpCharged,
                    purchase.org_id,
                    &format!("top-up-{}", purchase.id),
                    serde_json::json!({
                        "credits": super::credits::format(purchase.millicredits),
                        "amount": crate::web::format::money(purchase.amount_cents, &purchase.currency),
                    }),
                )
                .await?;
            }
            ChargeOutcome::Failed { message } => {
                fail(&mut tx, &purchase, &message).await?;
                sqlx::query(
                    "UPDATE credit_accounts SET top_up_failures = top_up_failures + 1,
                         top_up_not_before = now() + make_interval(secs => $2)
                     WHERE org_id = $1",
                )
                .bind(purchase.org_id)
                .bind(config.retry_after.as_secs_f64())
                .execute(&mut *tx)
                .await?;
                let failures: i32 = sqlx::query_scalar(
                    "SELECT top_up_failures FROM credit_accounts WHERE org_id = $1",
                )
                .bind(purchase.org_id)
                .fetch_one(&mut *tx)
                .await?;
                crate::notify::about_org(
                    &mut tx,
                    crate::notify::kinds::Kind::TopUpFailed,
                    purchase.org_id,
                    &format!("top-up-{}", purchase.id),
                    serde_json::json!({ "failures": failures }),
                )
                .await?;
                turn_off_after_repeated_failures(&mut tx, purchase.org_id).await?;
            }
        }
        tx.commit().await?;
        charged += 1;
    }
}

async fn fail(tx: &mut sqlx::PgConnection, purchase: &Purchase, message: &str) -> sqlx::Result<()> {
    tracing::warn!(org = %purchase.org_id, purchase = %purchase.id, reason = message, "auto top-up failed");
    sqlx::query(
        "UPDATE credit_purchases SET status = 'failed', failure = $2, settled_at = now()
         WHERE id = $1",
    )
    .bind(purchase.id)
    .bind(message)
    .execute(tx)
    .await?;
    Ok(())
}

async fn turn_off_after_repeated_failures(
    tx: &mut sqlx::PgConnection,
    org_id: Uuid,
) -> sqlx::Result<()> {
    let turned_off = sqlx::query(
        "UPDATE credit_accounts SET auto_top_up = false
         WHERE org_id = $1 AND auto_top_up AND top_up_failures >= $2",
    )
    .bind(org_id)
    .bind(MAX_FAILURES)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if turned_off == 1 {
        sqlx::query(
            "INSERT INTO notifications (org_id, kind, message) VALUES ($1, 'top_up_disabled', $2)",
        )
        .bind(org_id)
        .bind(format!(
            "Auto top-up was turned off after {MAX_FAILURES} failed charges in a row. Update \
             your card in the billing portal and turn it on again on the credits page."
        ))
        .execute(&mut *tx)
        .await?;
        // The owners and the operators are told (the breaker tripped), in the same transaction;
        // the cause is the failure count's run (a new run after it is turned on again).
        let cause = format!("top-up-off-{org_id}-{}", chrono::Utc::now().timestamp());
        let values = serde_json::json!({ "failures": MAX_FAILURES });
        crate::notify::about_org(
            &mut *tx,
            crate::notify::kinds::Kind::TopUpDisabled,
            org_id,
            &cause,
            values.clone(),
        )
        .await?;
        crate::notify::about_org(
            &mut *tx,
            crate::notify::kinds::Kind::OpsBreakerTripped,
            org_id,
            &cause,
            values,
        )
        .await?;
    }
    Ok(())
}
