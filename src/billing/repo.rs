//! SQL for billing: customers, the subscription projection and its history, Checkout Sessions,
//! invoices.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor};
use uuid::Uuid;

use super::subscription::Stored;

pub async fn customer_of(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar("SELECT stripe_customer_id FROM billing_customers WHERE org_id = $1")
        .bind(org_id)
        .fetch_optional(db)
        .await
}

pub async fn org_of_customer(
    db: impl PgExecutor<'_>,
    customer: &str,
) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT org_id FROM billing_customers WHERE stripe_customer_id = $1")
        .bind(customer)
        .fetch_optional(db)
        .await
}

/// Records the organization's customer; when two requests race, the first one stays.
pub async fn save_customer(
    db: &mut PgConnection,
    org_id: Uuid,
    customer: &str,
) -> sqlx::Result<String> {
    use sqlx::Connection;
    // A transaction (or a savepoint inside the caller's) carries the audit log's actor.
    let mut tx = db.begin().await?;
    crate::audit::context::stamp(&mut tx).await?;
    sqlx::query("INSERT INTO billing_customers (org_id, stripe_customer_id) VALUES ($1, $2) ON CONFLICT (org_id) DO NOTHING")
        .bind(org_id)
        .bind(customer)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(customer_of(&mut *db, org_id)
        .await?
        .unwrap_or_else(|| customer.to_owned()))
}

#[derive(sqlx::FromRow)]
struct Row {
    stripe_subscription_id: String,
    plan_key: String,
    status: String,
    trial_end: Option<DateTime<Utc>>,
    current_period_start: Option<DateTime<Utc>>,
    current_period_end: Option<DateTime<Utc>>,
    cancel_at_period_end: bool,
    past_due_since: Option<DateTime<Utc>>,
    kept_plan_key: Option<String>,
    kept_until: Option<DateTime<Utc>>,
    stripe_version: i64,
}

impl From<Row> for (Stored, i64) {
    fn from(r: Row) -> Self {
        (
            Stored {
                stripe_subscription_id: r.stripe_subscription_id,
                plan_key: r.plan_key,
                status: r.status,
                trial_end: r.trial_end,
                current_period_start: r.current_period_start,
                current_period_end: r.current_period_end,
                cancel_at_period_end: r.cancel_at_period_end,
                past_due_since: r.past_due_since,
                kept: r.kept_plan_key.zip(r.kept_until),
            },
            r.stripe_version,
        )
    }
}

const COLUMNS: &str = "stripe_subscription_id, plan_key, status, trial_end, current_period_start, current_period_end, \
                       cancel_at_period_end, past_due_since, kept_plan_key, kept_until, stripe_version";

/// The stored subscription and the version (`created` of the newest applied event).
pub async fn subscription(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Option<(Stored, i64)>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE org_id = $1"
    ))
    .bind(org_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

/// The same, locked until the transaction ends, so concurrent appliers take turns.
pub async fn subscription_for_update(
    db: &mut PgConnection,
    org_id: Uuid,
) -> sqlx::Result<Option<(Stored, i64)>> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM subscriptions WHERE org_id = $1 FOR UPDATE"
    ))
    .bind(org_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Into::into))
}

pub struct Upsert<'a> {
    pub org_id: Uuid,
    pub stored: &'a Stored,
    pub version: i64,
}

pub async fn upsert_subscription(db: &mut PgConnection, u: Upsert<'_>) -> sqlx::Result<()> {
    let s = u.stored;
    sqlx::query(
        "INSERT INTO subscriptions (org_id, stripe_subscription_id, plan_key, status, trial_end,
             current_period_start, current_period_end, cancel_at_period_end, past_due_since,
             kept_plan_key, kept_until, stripe_version, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, now())
         ON CONFLICT (org_id) DO UPDATE SET
             stripe_subscription_id = EXCLUDED.stripe_subscription_id, plan_key = EXCLUDED.plan_key,
             status = EXCLUDED.status, trial_end = EXCLUDED.trial_end,
             current_period_start = EXCLUDED.current_period_start,
             current_period_end = EXCLUDED.current_period_end,
             cancel_at_period_end = EXCLUDED.cancel_at_period_end,
             past_due_since = EXCLUDED.past_due_since, kept_plan_key = EXCLUDED.kept_plan_key,
             kept_until = EXCLUDED.kept_until, stripe_version = EXCLUDED.stripe_version,
             updated_at = now()",
    )
    .bind(u.org_id)
    .bind(&s.stripe_subscription_id)
    .bind(&s.plan_key)
    .bind(&s.status)
    .bind(s.trial_end)
    .bind(s.current_period_start)
    .bind(s.current_period_end)
    .bind(s.cancel_at_period_end)
    .bind(s.past_due_since)
    .bind(s.kept.as_ref().map(|k| k.0.clone()))
    .bind(s.kept.as_ref().map(|k| k.1))
    .bind(u.version)
    .execute(&mut *db)
    .await?;
    Ok(())
}

pub async fn record_history(
    db: &mut PgConnection,
    org_id: Uuid,
    s: &Stored,
    source: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO subscription_history (org_id, stripe_subscription_id, plan_key, status, source)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(org_id)
    .bind(&s.stripe_subscription_id)
    .bind(&s.plan_key)
    .bind(&s.status)
    .bind(source)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct HistoryEntry {
    pub plan_key: String,
    pub status: String,
    pub source: String,
    pub at: DateTime<Utc>,
}

pub async fn history(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<HistoryEntry>> {
    sqlx::query_as("SELECT plan_key, status, source, at FROM subscription_history WHERE org_id = $1 ORDER BY at DESC, id DESC LIMIT 50")
        .bind(org_id)
        .fetch_all(db)
        .await
}

/// Past-due subscriptions whose grace period began before `cutoff`.
pub async fn grace_expired(
    db: impl PgExecutor<'_>,
    cutoff: DateTime<Utc>,
) -> sqlx::Result<Vec<(Uuid, String)>> {
    sqlx::query_as(
        "SELECT org_id, stripe_subscription_id FROM subscriptions
         WHERE status IN ('past_due', 'unpaid') AND past_due_since < $1",
    )
    .bind(cutoff)
    .fetch_all(db)
    .await
}

pub async fn set_kept_plan(
    db: &mut PgConnection,
    org_id: Uuid,
    kept: Option<(&str, DateTime<Utc>)>,
) -> sqlx::Result<()> {
    crate::audit::context::stamp(&mut *db).await?;
    sqlx::query("UPDATE subscriptions SET kept_plan_key = $2, kept_until = $3 WHERE org_id = $1")
        .bind(org_id)
        .bind(kept.map(|k| k.0))
        .bind(kept.map(|k| k.1))
        .execute(db)
        .await?;
    Ok(())
}

// ---- Checkout Sessions ----

/// Makes requests that open a Checkout for one organization take turns until the transaction
/// ends, so the second one finds the first one's open session instead of creating another in
/// Stripe (the unique index alone would let both create one and keep only one).
pub async fn lock_checkouts(db: &mut PgConnection, org_id: Uuid) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("checkout:{org_id}"))
        .execute(db)
        .await?;
    Ok(())
}

pub async fn open_checkout(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Option<(String, String)>> {
    sqlx::query_as("SELECT id, url FROM checkout_sessions WHERE org_id = $1 AND status = 'open'")
        .bind(org_id)
        .fetch_optional(db)
        .await
}

/// The organization's open Checkout with the plan it sells (`None` for a credit pack).
pub async fn open_checkout_with_plan(
    db: impl PgExecutor<'_>,
    org_id: Uuid,
) -> sqlx::Result<Option<(String, String, Option<String>)>> {
    sqlx::query_as(
        "SELECT id, url, plan_key FROM checkout_sessions WHERE org_id = $1 AND status = 'open'",
    )
    .bind(org_id)
    .fetch_optional(db)
    .await
}

/// Records a new open session; `false` when the organization already has one open.
pub async fn insert_checkout(
    db: &mut PgConnection,
    org_id: Uuid,
    id: &str,
    url: &str,
    plan_key: Option<&str>,
) -> sqlx::Result<bool> {
    crate::audit::context::stamp(&mut *db).await?;
    let inserted = sqlx::query(
        "INSERT INTO checkout_sessions (id, org_id, plan_key, status, url) VALUES ($1, $2, $3, 'open', $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(org_id)
    .bind(plan_key)
    .bind(url)
    .execute(db)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

pub async fn close_checkout(db: impl PgExecutor<'_>, id: &str, status: &str) -> sqlx::Result<()> {
    sqlx::query("UPDATE checkout_sessions SET status = $2 WHERE id = $1")
        .bind(id)
        .bind(status)
        .execute(db)
        .await?;
    Ok(())
}

// ---- Invoices ----

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Invoice {
    pub stripe_invoice_id: String,
    pub number: Option<String>,
    pub status: String,
    pub currency: String,
    pub amount_due: i64,
    pub amount_paid: i64,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub hosted_invoice_url: Option<String>,
    pub invoice_pdf: Option<String>,
    pub created: DateTime<Utc>,
}

/// Stores invoices, never moving one back to an earlier status (a late `invoice.finalized`
/// does not undo `invoice.paid`). An invoice named more than once is stored once per statement,
/// in the order given, so the result is the same as storing them one at a time.
pub async fn upsert_invoices(
    db: &mut PgConnection,
    invoices: &[(Uuid, &Invoice)],
) -> sqlx::Result<()> {
    for wave in in_waves(invoices, |(_, i)| i.stripe_invoice_id.as_str()) {
        let column = |f: fn(&Invoice) -> Option<String>| -> Vec<Option<String>> {
            wave.iter().map(|(_, i)| f(i)).collect()
        };
        sqlx::query(
            "INSERT INTO invoices (stripe_invoice_id, org_id, number, status, currency, amount_due,
                 amount_paid, period_start, period_end, hosted_invoice_url, invoice_pdf, created)
             SELECT * FROM UNNEST($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                 $6::bigint[], $7::bigint[], $8::timestamptz[], $9::timestamptz[], $10::text[],
                 $11::text[], $12::timestamptz[])
             ON CONFLICT (stripe_invoice_id) DO UPDATE SET
                 number = coalesce(EXCLUDED.number, invoices.number), status = EXCLUDED.status,
                 amount_due = EXCLUDED.amount_due, amount_paid = EXCLUDED.amount_paid,
                 hosted_invoice_url = coalesce(EXCLUDED.hosted_invoice_url, invoices.hosted_invoice_url),
                 invoice_pdf = coalesce(EXCLUDED.invoice_pdf, invoices.invoice_pdf)
             WHERE (CASE EXCLUDED.status WHEN 'draft' THEN 0 WHEN 'open' THEN 1 ELSE 2 END)
                >= (CASE invoices.status WHEN 'draft' THEN 0 WHEN 'open' THEN 1 ELSE 2 END)",
        )
        .bind(column(|i| Some(i.stripe_invoice_id.clone())))
        .bind(wave.iter().map(|(org, _)| *org).collect::<Vec<Uuid>>())
        .bind(column(|i| i.number.clone()))
        .bind(column(|i| Some(i.status.clone())))
        .bind(column(|i| Some(i.currency.clone())))
        .bind(wave.iter().map(|(_, i)| i.amount_due).collect::<Vec<i64>>())
        .bind(wave.iter().map(|(_, i)| i.amount_paid).collect::<Vec<i64>>())
        .bind(wave.iter().map(|(_, i)| i.period_start).collect::<Vec<_>>())
        .bind(wave.iter().map(|(_, i)| i.period_end).collect::<Vec<_>>())
        .bind(column(|i| i.hosted_invoice_url.clone()))
        .bind(column(|i| i.invoice_pdf.clone()))
        .bind(wave.iter().map(|(_, i)| i.created).collect::<Vec<_>>())
        .execute(&mut *db)
        .await?;
    }
    Ok(())
}

/// Splits `items` into waves in which no key appears twice: an item's n-th occurrence of its key
/// goes to wave n, so running the waves in order keeps each key's order.
fn in_waves<T: Copy, K: Eq + std::hash::Hash>(items: &[T], key: impl Fn(&T) -> K) -> Vec<Vec<T>> {
    let mut seen: HashMap<K, usize> = HashMap::new();
    let mut waves: Vec<Vec<T>> = Vec::new();
    for item in items {
        let n = seen.entry(key(item)).or_insert(0);
        if waves.len() <= *n {
            waves.push(Vec::new());
        }
        waves[*n].push(*item);
        *n += 1;
    }
    waves
}

/// The organizations of the given Stripe customers (unknown customers are left out).
pub async fn orgs_of_customers(
    db: impl PgExecutor<'_>,
    customers: &[&str],
) -> sqlx::Result<HashMap<String, Uuid>> {
    let rows: Vec<(String, Uuid)> = sqlx::query_as(
        "SELECT stripe_customer_id, org_id FROM billing_customers WHERE stripe_customer_id = ANY($1)",
    )
    .bind(customers)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().collect())
}

/// Up to `limit` of the organization's invoices, newest first, after the invoice
/// `starting_after` (a cursor, as Stripe pages lists). `None` when the cursor is not one of the
/// organization's invoices.
pub async fn invoices_after(
    db: &sqlx::PgPool,
    org_id: Uuid,
    starting_after: Option<&str>,
    limit: i64,
) -> sqlx::Result<Option<Vec<Invoice>>> {
    let cursor: Option<(DateTime<Utc>, String)> = match starting_after {
        None => None,
        Some(id) => {
            let found = sqlx::query_as(
                "SELECT created, stripe_invoice_id FROM invoices
                 WHERE org_id = $1 AND stripe_invoice_id = $2",
            )
            .bind(org_id)
            .bind(id)
            .fetch_optional(db)
            .await?;
            match found {
                Some(found) => Some(found),
                None => return Ok(None),
            }
        }
    };
    let (created, id) = cursor.unzip();
    let rows = sqlx::query_as(
        "SELECT stripe_invoice_id, number, status, currency, amount_due, amount_paid, period_start,
                period_end, hosted_invoice_url, invoice_pdf, created
         FROM invoices
         WHERE org_id = $1 AND ($2::timestamptz IS NULL OR (created, stripe_invoice_id) < ($2, $3))
         ORDER BY created DESC, stripe_invoice_id DESC LIMIT $4",
    )
    .bind(org_id)
    .bind(created)
    .bind(id)
    .bind(limit)
    .fetch_all(db)
    .await?;
    Ok(Some(rows))
}

pub async fn invoices(db: impl PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<Vec<Invoice>> {
    sqlx::query_as(
        "SELECT stripe_invoice_id, number, status, currency, amount_due, amount_paid, period_start,
                period_end, hosted_invoice_url, invoice_pdf, created
         FROM invoices WHERE org_id = $1 ORDER BY created DESC, stripe_invoice_id DESC LIMIT 100",
    )
    .bind(org_id)
    .fetch_all(db)
    .await
}

#[cfg(test)]
mod tests {
    use super::in_waves;

    #[test]
    fn waves_hold_each_key_once_and_keep_its_order() {
        let items = [("a", 1), ("b", 1), ("a", 2), ("a", 3), ("c", 1), ("b", 2)];
        let waves = in_waves(&items, |(k, _)| *k);
        assert_eq!(
            waves,
            vec![
                vec![("a", 1), ("b", 1), ("c", 1)],
                vec![("a", 2), ("b", 2)],
                vec![("a", 3)],
            ]
        );
        assert!(in_waves(&[] as &[(&str, i32)], |(k, _)| *k).is_empty());
    }
}

// ---- Trial grants ----

/// Why a trial cannot be granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrialRefusal {
    /// This person already started a trial (in any organization).
    Person,
    /// This organization already had one.
    Organization,
}

/// Whether this person has already been granted a trial anywhere.
pub async fn user_had_trial(db: impl PgExecutor<'_>, user_id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM trial_grants WHERE user_id = $1)")
        .bind(user_id)
        .fetch_one(db)
        .await
}

/// Whether a trial was granted with this card, other than `except` (a grant id).
pub async fn card_had_trial(
    db: impl PgExecutor<'_>,
    fingerprint: &str,
    except: Option<i64>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM trial_grants
                        WHERE card_fingerprint = $1 AND id IS DISTINCT FROM $2)",
    )
    .bind(fingerprint)
    .bind(except)
    .fetch_one(db)
    .await
}

/// Live trials whose card is not yet recorded: (grant id, org, Stripe customer, subscription).
pub async fn trials_without_card(
    db: impl PgExecutor<'_>,
) -> sqlx::Result<Vec<(i64, Uuid, String, String)>> {
    sqlx::query_as(
        "SELECT g.id, g.org_id, c.stripe_customer_id, s.stripe_subscription_id
         FROM trial_grants g
         JOIN subscriptions s ON s.org_id = g.org_id
         JOIN billing_customers c ON c.org_id = g.org_id
         WHERE s.status = 'trialing' AND g.card_fingerprint IS NULL
         ORDER BY g.id LIMIT 500",
    )
    .fetch_all(db)
    .await
}

/// Records the card a trial's organization put on file; `false` when another checker recorded
/// it first. Callers serialize on the fingerprint (see [`lock_fingerprint`]) so that of two
/// trials with one card, the second sees the first.
pub async fn set_grant_card(
    db: impl PgExecutor<'_>,
    grant_id: i64,
    fingerprint: &str,
) -> sqlx::Result<bool> {
    let updated = sqlx::query(
        "UPDATE trial_grants SET card_fingerprint = $2 WHERE id = $1 AND card_fingerprint IS NULL",
    )
    .bind(grant_id)
    .bind(fingerprint)
    .execute(db)
    .await?;
    Ok(updated.rows_affected() == 1)
}

pub async fn lock_fingerprint(db: &mut PgConnection, fingerprint: &str) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("card:{fingerprint}"))
        .execute(db)
        .await?;
    Ok(())
}

/// Records the grant inside the transaction that starts the trial. A parallel start for the
/// same organization or person waits here for the first to commit, then is refused.
pub async fn grant_trial(
    db: &mut PgConnection,
    org_id: Uuid,
    user_id: Uuid,
    plan_key: &str,
    card_fingerprint: Option<&str>,
) -> sqlx::Result<Result<(), TrialRefusal>> {
    let inserted = sqlx::query(
        "INSERT INTO trial_grants (org_id, user_id, plan_key, card_fingerprint)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(org_id)
    .bind(user_id)
    .bind(plan_key)
    .bind(card_fingerprint)
    .execute(&mut *db)
    .await;
    match inserted {
        Ok(_) => Ok(Ok(())),
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("trial_grants_user_key") => {
            Ok(Err(TrialRefusal::Person))
        }
        Err(sqlx::Error::Database(e)) if e.constraint() == Some("trial_grants_org_key") => {
            Ok(Err(TrialRefusal::Organization))
        }
        Err(e) => Err(e),
    }
}
