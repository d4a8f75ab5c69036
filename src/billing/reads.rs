//! What the billing pages show, each read in one call: the subscription, the invoices and the
//! open Checkout for the billing page; the subscription and whether a trial is on offer for the
//! plans page; a page of invoices for the API. Reads only; the use cases that change billing are in [`super::use_cases`].

use sqlx::PgPool;
use uuid::Uuid;

use super::catalog::Catalog;
use super::repo::{self, Invoice};
use super::subscription::Stored;

/// The organization's subscription as we hold it, if it ever had one.
pub async fn subscription(db: &PgPool, org_id: Uuid) -> sqlx::Result<Option<Stored>> {
    Ok(repo::subscription(db, org_id).await?.map(|(s, _)| s))
}

/// What the billing page shows.
pub struct Overview {
    pub stored: Option<Stored>,
    pub invoices: Vec<Invoice>,
    /// The link of the organization's open Checkout, as Stripe gave it (check it before showing).
    pub open_checkout_url: Option<String>,
}

pub async fn overview(db: &PgPool, org_id: Uuid) -> sqlx::Result<Overview> {
    Ok(Overview {
        stored: subscription(db, org_id).await?,
        invoices: repo::invoices(db, org_id).await?,
        open_checkout_url: repo::open_checkout(db, org_id).await?.map(|(_, url)| url),
    })
}

/// What the plans page shows.
pub struct PlanChoices {
    pub stored: Option<Stored>,
    /// A trial is offered once: to organizations that never had a subscription, by people who
    /// never had a trial.
    pub may_trial: bool,
}

pub async fn plan_choices(
    db: &PgPool,
    catalog: &Catalog,
    org_id: Uuid,
    user_id: Uuid,
) -> sqlx::Result<PlanChoices> {
    let stored = subscription(db, org_id).await?;
    let may_trial =
        stored.is_none() && catalog.trial_days > 0 && !repo::user_had_trial(db, user_id).await?;
    Ok(PlanChoices { stored, may_trial })
}

/// Most invoices one page of the API's list holds.
pub const MAX_INVOICE_PAGE: u32 = 100;

/// One page of the organization's invoices, newest first.
pub struct InvoicePage {
    pub invoices: Vec<Invoice>,
    /// More invoices follow the last one (ask again with it as the cursor).
    pub has_more: bool,
}

/// Why a page of invoices could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InvoicePageError {
    /// The cursor is not one of the organization's invoices.
    #[error("no such invoice for this organization")]
    UnknownCursor,
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// Up to `limit` (1 to [`MAX_INVOICE_PAGE`]) invoices after the invoice `starting_after`.
pub async fn invoice_page(
    db: &PgPool,
    org_id: Uuid,
    starting_after: Option<&str>,
    limit: u32,
) -> Result<InvoicePage, InvoicePageError> {
    let limit = limit.clamp(1, MAX_INVOICE_PAGE);
    // One more than asked says whether another page follows.
    let mut invoices = repo::invoices_after(db, org_id, starting_after, i64::from(limit) + 1)
        .await?
        .ok_or(InvoicePageError::UnknownCursor)?;
    let has_more = invoices.len() > limit as usize;
    invoices.truncate(limit as usize);
    Ok(InvoicePage { invoices, has_more })
}
