//! The credit ledger: every change to a balance other than an action goes through [`adjust`],
//! which locks the organization's account row, writes one ledger entry (once per outside
//! reference) and moves the cached balance by the same amount in the same transaction.
//! Purchases, their refunds and admin grants are built on it here.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use super::consumption::Account;
use super::credits::{pack_millicredits, refunded_share};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Purchase,
    TopUp,
    Refund,
    Grant,
    Removal,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Purchase => "purchase",
            Kind::TopUp => "top_up",
            Kind::Refund => "refund",
            Kind::Grant => "grant",
            Kind::Removal => "removal",
        }
    }
}

/// One change to an organization's credits.
pub struct Entry<'a> {
    pub org_id: Uuid,
    pub kind: Kind,
    /// Signed: negative removes credits.
    pub millicredits: i64,
    pub reason: Option<&'a str>,
    /// An outside fact this entry stands for; the same reference is applied once.
    pub reference: Option<&'a str>,
    pub actor_id: Option<Uuid>,
}

/// The cached balance, without locking.
pub async fn balance(db: impl sqlx::PgExecutor<'_>, org_id: Uuid) -> sqlx::Result<i64> {
    let (balance,): (i64,) =
        sqlx::query_as("SELECT balance_millicredits FROM credit_accounts WHERE org_id = $1")
            .bind(org_id)
            .fetch_one(db)
            .await?;
    Ok(balance)
}

/// Locks the organization's account for the rest of the transaction.
pub async fn lock_account(db: &mut PgConnection, org_id: Uuid) -> sqlx::Result<Account> {
    let (balance, overage): (i64, i32) = sqlx::query_as(
        "SELECT balance_millicredits, unsettled_overage FROM credit_accounts
         WHERE org_id = $1 FOR UPDATE",
    )
    .bind(org_id)
    .fetch_one(&mut *db)
    .await?;
    Ok(Account {
        balance_millicredits: balance,
        unsettled_overage: overage.max(0) as u32,
    })
}

/// Applies an entry. Returns false (and changes nothing) when its reference was applied before.
pub async fn adjust(db: &mut PgConnection, entry: Entry<'_>) -> sqlx::Result<bool> {
    crate::audit::context::stamp(&mut *db).await?;
    let mut account = lock_account(db, entry.org_id).await?;
    let inserted = sqlx::query(
        "INSERT INTO credit_ledger (org_id, kind, millicredits, reason, reference, actor_id)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (org_id, kind, reference) DO NOTHING",
    )
    .bind(entry.org_id)
    .bind(entry.kind.as_str())
    .bind(entry.millicredits)
    .bind(entry.reason)
    .bind(entry.reference)
    .bind(entry.actor_id)
    .execute(&mut *db)
    .await?
    .rows_affected();
    if inserted == 0 {
        return Ok(false);
    }
    account.adjust(entry.millicredits);
    sqlx::query(
        "UPDATE credit_accounts SET balance_millicredits = $2, unsettled_overage = $3,
             updated_at = now()
         WHERE org_id = $1",
    )
    .bind(entry.org_id)
    .bind(account.balance_millicredits)
    .bind(account.unsettled_overage as i32)
    .execute(&mut *db)
    .await?;
    Ok(true)
}

/// A purchase as the pages and the settling code need it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Purchase {
    pub id: Uuid,
    pub org_id: Uuid,
    pub source: String,
    pub packs: i32,
    pub millicredits: i64,
    pub amount_cents: i64,
    pub currency: String,
    pub status: String,
    pub checkout_session_id: Option<String>,
    pub payment_intent_id: Option<String>,
    pub refunded_cents: i64,
    pub refunded_millicredits: i64,
    pub failure: Option<String>,
    pub created_at: DateTime<Utc>,
}

const PURCHASE_COLUMNS: &str = "id, org_id, source, packs, millicredits, amount_cents, currency, \
    status, checkout_session_id, payment_intent_id, refunded_cents, refunded_millicredits, \
    failure, created_at";

pub struct NewPurchase<'a> {
    pub id: Uuid,
    pub org_id: Uuid,
    pub source: &'a str,
    pub packs: i64,
    pub credits_per_pack: i64,
    pub price_cents_per_pack: i64,
    pub currency: &'a str,
    pub checkout_session_id: Option<&'a str>,
}

pub async fn insert_purchase(db: &mut PgConnection, p: NewPurchase<'_>) -> sqlx::Result<bool> {
    crate::audit::context::stamp(&mut *db).await?;
    let done = sqlx::query(
        "INSERT INTO credit_purchases (id, org_id, source, packs, millicredits, amount_cents,
             currency, status, checkout_session_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8)
         ON CONFLICT DO NOTHING",
    )
    .bind(p.id)
    .bind(p.org_id)
    .bind(p.source)
    .bind(p.packs as i32)
    .bind(pack_millicredits(p.credits_per_pack, p.packs))
    .bind(p.price_cents_per_pack * p.packs)
    .bind(p.currency)
    .bind(p.checkout_session_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

pub async fn purchase(db: &mut PgConnection, id: Uuid) -> sqlx::Result<Option<Purchase>> {
    sqlx::query_as(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM credit_purchases WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(db)
    .await
}

pub async fn purchases(db: &mut PgConnection, org_id: Uuid) -> sqlx::Result<Vec<Purchase>> {
    sqlx::query_as(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM credit_purchases WHERE org_id = $1
         ORDER BY created_at DESC LIMIT 50"
    ))
    .bind(org_id)
    .fetch_all(db)
    .await
}

/// "2 × 500 credits": what a purchase bought, as the ledger shows it.
pub fn pack_reason(purchase: &Purchase) -> String {
    let per_pack = purchase.millicredits / i64::from(purchase.packs.max(1));
    format!(
        "{} × {} credits",
        purchase.packs,
        super::credits::format(per_pack)
    )
}

/// A paid Checkout Session for credits, as Stripe reported it (webhook or success page).
pub struct PaidCheckout<'a> {
    pub session_id: &'a str,
    pub payment_intent_id: Option<&'a str>,
}

/// Credits a paid pack Checkout exactly once, whichever of the success page and the webhook
/// gets here first. Returns the credits added now (0 when already added, or unknown session).
pub async fn settle_checkout(db: &mut PgConnection, paid: PaidCheckout<'_>) -> sqlx::Result<i64> {
    let found: Option<Purchase> = sqlx::query_as(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM credit_purchases WHERE checkout_session_id = $1"
    ))
    .bind(paid.session_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some(purchase) = found else {
        return Ok(0);
    };
    let added = adjust(
        db,
        Entry {
            org_id: purchase.org_id,
            kind: Kind::Purchase,
            millicredits: purchase.millicredits,
            reason: Some(&pack_reason(&purchase)),
            reference: Some(paid.session_id),
            actor_id: None,
        },
    )
    .await?;
    sqlx::query(
        "UPDATE credit_purchases SET status = 'paid', settled_at = coalesce(settled_at, now()),
             payment_intent_id = coalesce(payment_intent_id, $2)
         WHERE id = $1",
    )
    .bind(purchase.id)
    .bind(paid.payment_intent_id)
    .execute(&mut *db)
    .await?;
    if added {
        crate::notify::about_org(
            db,
            crate::notify::kinds::Kind::PackBought,
            purchase.org_id,
            &format!("purchase-{}", purchase.id),
            serde_json::json!({
                "credits": super::credits::format(purchase.millicredits),
                "amount": crate::web::format::money(purchase.amount_cents, &purchase.currency),
                "packs": purchase.packs,
            }),
        )
        .await?;
    }
    Ok(if added { purchase.millicredits } else { 0 })
}

/// A pack Checkout that expired unpaid.
pub async fn expire_checkout(db: &mut PgConnection, session_id: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE credit_purchases SET status = 'expired', settled_at = now()
         WHERE checkout_session_id = $1 AND status = 'pending'",
    )
    .bind(session_id)
    .execute(db)
    .await?;
    Ok(())
}

/// A refunded charge, as Stripe reported it (read in the Stripe gateway).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundFacts {
    /// The payment the charge belongs to: it names the purchase.
    pub payment_intent_id: String,
    pub charge_id: String,
    /// How much of the charge has been refunded in total so far.
    pub refunded_cents: i64,
}

/// Applies a refunded charge: takes back the refunded share of the purchase the charge paid for.
/// The charge says how much has been refunded in total, so duplicate or out-of-order events
/// never take back more than that. Returns the organization when the charge paid for credits.
pub async fn apply_refund(
    db: &mut PgConnection,
    refund: &RefundFacts,
) -> sqlx::Result<Option<Uuid>> {
    let RefundFacts {
        payment_intent_id: intent,
        charge_id,
        refunded_cents,
    } = refund;
    let refunded_cents = *refunded_cents;
    let found: Option<Purchase> = sqlx::query_as(&format!(
        "SELECT {PURCHASE_COLUMNS} FROM credit_purchases WHERE payment_intent_id = $1 FOR UPDATE"
    ))
    .bind(intent.as_str())
    .fetch_optional(&mut *db)
    .await?;
    let Some(purchase) = found else {
        return Ok(None);
    };
    let target = refunded_share(purchase.millicredits, purchase.amount_cents, refunded_cents);
    let more = target - purchase.refunded_millicredits;
    if more > 0 {
        adjust(
            db,
            Entry {
                org_id: purchase.org_id,
                kind: Kind::Refund,
                millicredits: -more,
                reason: Some("Refund of a credit pack"),
                reference: Some(&format!("{charge_id}:{refunded_cents}")),
                actor_id: None,
            },
        )
        .await?;
        sqlx::query(
            "UPDATE credit_purchases SET refunded_cents = $2, refunded_millicredits = $3
             WHERE id = $1",
        )
        .bind(purchase.id)
        .bind(refunded_cents.min(purchase.amount_cents))
        .bind(target)
        .execute(&mut *db)
        .await?;
        crate::notify::about_org(
            db,
            crate::notify::kinds::Kind::RefundRemovedCredits,
            purchase.org_id,
            &format!("{charge_id}:{refunded_cents}"),
            serde_json::json!({
                "credits": super::credits::format(more),
                "amount": crate::web::format::money(
                    refunded_cents.min(purchase.amount_cents) - purchase.refunded_cents,
                    &purchase.currency,
                ),
            }),
        )
        .await?;
    }
    Ok(Some(purchase.org_id))
}

/// One line of the ledger page: an entry, or a day's debits by actions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Line {
    pub at: DateTime<Utc>,
    pub kind: String,
    pub millicredits: i64,
    pub reason: Option<String>,
    pub actor_email: Option<String>,
    /// For debits: how many actions the line sums up.
    pub actions: Option<i64>,
}

/// Ledger entries and per-day action debits, newest first.
pub async fn lines(db: &mut PgConnection, org_id: Uuid, limit: i64) -> sqlx::Result<Vec<Line>> {
    sqlx::query_as(
        "SELECT * FROM (
             SELECT l.created_at AS at, l.kind, l.millicredits, l.reason, u.email AS actor_email,
                    NULL::bigint AS actions
             FROM credit_ledger l LEFT JOIN users u ON u.id = l.actor_id
             WHERE l.org_id = $1
             UNION ALL
             SELECT max(last_recorded_at) AS at, 'debit' AS kind, -sum(millicredits)::bigint,
                    'Actions on ' || to_char(recorded_day, 'FMDD Mon YYYY'),
                    NULL, sum(debits)::bigint
             FROM usage_daily
             WHERE org_id = $1 AND debits > 0
             GROUP BY recorded_day
         ) lines
         ORDER BY at DESC LIMIT $2",
    )
    .bind(org_id)
    .bind(limit)
    .fetch_all(db)
    .await
}
