//! The credit use cases, one function each: buying credit packs through Stripe Checkout, saving
//! the auto top-up settings, a platform admin's grant or removal of credits, and settling a paid
//! pack Checkout from the success page; plus the reads the credits pages are drawn from.
//!
//! Every dependency is passed in (pool, Stripe gateway, catalog, public URL, the entitlements
//! cache, the top-up worker's wake-up), every outcome and error is typed, and nothing here knows
//! about HTTP or views: the server functions (`super::forms`, `crate::admin::forms`, and the
//! billing success page) read the input, call one of these and present the result.

use sqlx::PgPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::credit_input::{
    AdjustmentForm, AutoTopUp, Change, CreditAdjustment, InvalidInput, PackCount, TopUpForm,
};
use super::ledger::{self, Entry, Kind, Line, NewPurchase, PaidCheckout};
use super::repo::{self, TopUpSettings};
use crate::accounts::repo::User;
use crate::api::entitlements::EntitlementsCache;
use crate::billing::catalog::Catalog;
use crate::billing::repo as billing_repo;
use crate::billing::service::ensure_customer;
use crate::orgs::model::Role;
use crate::orgs::repo::Membership;
use crate::stripe_gateway::credit_calls::PackCheckout;
use crate::stripe_gateway::Gateway;

/// Why a credit use case did not happen.
#[derive(Debug, thiserror::Error)]
pub enum CreditError {
    /// A form field was refused; nothing changed.
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
    /// The catalog sells no credit pack.
    #[error("no credit pack is for sale")]
    NotForSale,
    /// The caller's role (or lack of platform admin rights) does not allow it.
    #[error("not allowed")]
    NotAllowed,
    /// No organization by that name (the admin's adjustment).
    #[error("no such organization")]
    UnknownOrganization,
    /// Stripe could not be reached or refused the request.
    #[error("Stripe failed: {0:#}")]
    Stripe(anyhow::Error),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

impl CreditError {
    /// An error from code that talks to Stripe and may also have written to the database
    /// (creating the customer, say): a database error stays one.
    fn from_gateway(e: anyhow::Error) -> Self {
        match e.downcast::<sqlx::Error>() {
            Ok(db) => CreditError::Database(db),
            Err(other) => CreditError::Stripe(other),
        }
    }
}

/// Where a credit pack purchase continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PackCheckoutOutcome {
    /// A new Checkout Session with a pending purchase behind it: send the customer there.
    Opened { url: String },
    /// The organization already has a checkout open (one at a time): send the customer back to
    /// it; nothing new was created.
    AlreadyOpen { url: String },
}

/// Buys `packs` (as typed) credit packs through a Checkout Session in payment mode, for managers
/// of the organization. One open checkout per organization: parallel requests take turns on the
/// per-organization lock, and all but the first find its session, so no orphaned session or
/// purchase is left. The pending purchase row and the open checkout are written in the
/// transaction that held the lock.
pub async fn buy_packs(
    pool: &PgPool,
    gateway: &Gateway,
    catalog: &Catalog,
    public_url: &str,
    buyer: &Membership,
    buyer_email: &str,
    packs: &str,
) -> Result<PackCheckoutOutcome, CreditError> {
    if !buyer.role.can_manage() {
        return Err(CreditError::NotAllowed);
    }
    let pack = catalog
        .credit_pack
        .as_ref()
        .ok_or(CreditError::NotForSale)?;
    let packs = PackCount::parse(packs)?.get();
    let org = &buyer.org;
    let customer = ensure_customer(pool, gateway, org.id, &org.name, buyer_email)
        .await
        .map_err(CreditError::from_gateway)?;
    let price_id = gateway
        .price_id(&pack.lookup_key)
        .await
        .map_err(|e| CreditError::Stripe(e.into()))?;
    let mut tx = pool.begin().await?;
    billing_repo::lock_checkouts(&mut tx, org.id).await?;
    if let Some((_, url)) = billing_repo::open_checkout(&mut *tx, org.id).await? {
        return Ok(PackCheckoutOutcome::AlreadyOpen { url });
    }
    let purchase_id = Uuid::new_v4();
    let link = gateway
        .create_pack_checkout(PackCheckout {
            org_id: org.id,
            purchase_id,
            customer: &customer,
            price_id: &price_id,
            packs,
            success_url: &format!(
                "{public_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
            ),
            cancel_url: &format!("{public_url}/billing/cancel?org={}", org.slug),
        })
        .await
        .map_err(CreditError::Stripe)?;
    ledger::insert_purchase(
        &mut tx,
        NewPurchase {
            id: purchase_id,
            org_id: org.id,
            source: "checkout",
            packs,
            credits_per_pack: pack.credits,
            price_cents_per_pack: pack.price_cents,
            currency: &catalog.currency,
            checkout_session_id: Some(&link.id),
        },
    )
    .await?;
    billing_repo::insert_checkout(&mut tx, org.id, &link.id, &link.url, None).await?;
    tx.commit().await?;
    Ok(PackCheckoutOutcome::Opened { url: link.url })
}

/// Saves the organization's auto top-up settings, for owners. Turning it on needs a card saved
/// by an earlier pack purchase (the Stripe customer exists). Wakes the top-up worker, which
/// decides whether a top-up is due. Returns the settings saved.
pub async fn save_auto_top_up(
    pool: &PgPool,
    top_up_worker: &Notify,
    owner: &Membership,
    form: TopUpForm<'_>,
) -> Result<AutoTopUp, CreditError> {
    if owner.role != Role::Owner {
        return Err(CreditError::NotAllowed);
    }
    let settings = AutoTopUp::parse(form)?;
    if settings.enabled
        && billing_repo::customer_of(pool, owner.org.id)
            .await?
            .is_none()
    {
        return Err(InvalidInput::new(
            "enabled",
            "Buy a pack once first: auto top-up charges the card saved then.",
        )
        .into());
    }
    repo::save_top_up_settings(
        pool,
        owner.org.id,
        &TopUpSettings {
            auto_top_up: settings.enabled,
            top_up_below_credits: settings.below_credits,
            top_up_packs: settings.packs,
            top_up_monthly_cap: settings.monthly_cap,
            top_up_failures: 0,
        },
    )
    .await?;
    top_up_worker.notify_one();
    Ok(settings)
}

/// What an admin's adjustment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Adjusted {
    pub org_id: Uuid,
    /// Signed: negative when credits were removed.
    pub millicredits: i64,
}

/// A platform admin grants or removes credits of the organization `slug`, with a reason the
/// ledger shows and the admin recorded as its author.
pub async fn adjust_credits(
    pool: &PgPool,
    entitlements: &EntitlementsCache,
    admin: &User,
    slug: &str,
    form: AdjustmentForm<'_>,
) -> Result<Adjusted, CreditError> {
    if !admin.is_platform_admin {
        return Err(CreditError::NotAllowed);
    }
    let (org_id, _) = crate::admin::queries::organization(pool, slug)
        .await?
        .ok_or(CreditError::UnknownOrganization)?;
    let adjustment = CreditAdjustment::parse(form)?;
    let mut tx = pool.begin().await?;
    ledger::adjust(
        &mut tx,
        Entry {
            org_id,
            kind: match adjustment.change {
                Change::Grant => Kind::Grant,
                Change::Removal => Kind::Removal,
            },
            millicredits: adjustment.millicredits,
            reason: Some(adjustment.reason.as_str()),
            reference: None,
            actor_id: Some(admin.id),
        },
    )
    .await?;
    tx.commit().await?;
    entitlements.forget(&[org_id]);
    Ok(Adjusted {
        org_id,
        millicredits: adjustment.millicredits,
    })
}

/// Settles a paid credit pack from the Checkout success page: closes the checkout and credits
/// the purchase. The webhook may come earlier or later; the ledger reference makes it count
/// once. Returns the milli-credits added now (0 when they were added before).
pub async fn settle_from_success_page(
    pool: &PgPool,
    entitlements: &EntitlementsCache,
    session_id: &str,
    payment_intent_id: Option<&str>,
    org_id: Uuid,
) -> Result<i64, CreditError> {
    let mut tx = pool.begin().await?;
    billing_repo::close_checkout(&mut *tx, session_id, "complete").await?;
    let added = ledger::settle_checkout(
        &mut tx,
        PaidCheckout {
            session_id,
            payment_intent_id,
        },
    )
    .await?;
    tx.commit().await?;
    entitlements.forget(&[org_id]);
    Ok(added)
}

/// An organization's balance and its latest ledger lines, newest first.
#[derive(Debug, Clone)]
pub struct LedgerSummary {
    pub balance_millicredits: i64,
    pub lines: Vec<Line>,
}

/// The balance and the last `limit` ledger lines (the admin's credits block).
pub async fn ledger_summary(
    pool: &PgPool,
    org_id: Uuid,
    limit: i64,
) -> Result<LedgerSummary, sqlx::Error> {
    let mut db = pool.acquire().await?;
    let balance_millicredits = ledger::balance(&mut *db, org_id).await?;
    let lines = ledger::lines(&mut db, org_id, limit).await?;
    Ok(LedgerSummary {
        balance_millicredits,
        lines,
    })
}

/// What the credits page shows: the ledger and the auto top-up settings and state.
#[derive(Debug, Clone)]
pub struct CreditsOverview {
    pub ledger: LedgerSummary,
    pub top_up: TopUpSettings,
}

/// Lines the credits page lists.
const CREDITS_PAGE_LINES: i64 = 100;

pub async fn credits_overview(pool: &PgPool, org_id: Uuid) -> Result<CreditsOverview, sqlx::Error> {
    let ledger = ledger_summary(pool, org_id, CREDITS_PAGE_LINES).await?;
    let top_up = repo::top_up_settings(pool, org_id).await?;
    Ok(CreditsOverview { ledger, top_up })
}
