//! `GET /api/v1/invoices`: the organization's invoices, newest first, paged as Stripe pages its
//! lists: `limit` (1 to 100, default 10) and `starting_after` (the last invoice id of the page
//! before), with `has_more` saying whether another page follows. Links to Stripe's hosted page
//! and PDF are answered only when they are `https` (or `http` on loopback, the emulator).

use axum::extract::{RawQuery, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::keys::ApiCaller;
use super::scopes::Scope;
use super::ApiError;
use crate::billing::reads::{self, InvoicePageError, MAX_INVOICE_PAGE};
use crate::billing::repo::Invoice;
use crate::web::links::safe_external_url_owned;
use crate::web::state::AppState;

/// Invoices a page holds when `limit` is not given.
const DEFAULT_LIMIT: u32 = 10;
/// Longest invoice id taken as a cursor.
const MAX_CURSOR_LEN: usize = 255;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceAnswer {
    /// Stripe's invoice id; pass the last one of a page as `starting_after` for the next.
    pub id: String,
    pub number: Option<String>,
    /// `draft`, `open`, `paid`, `void` or `uncollectible`.
    pub status: String,
    pub currency: String,
    /// In the currency's minor unit (cents).
    pub amount_due_cents: i64,
    pub amount_paid_cents: i64,
    pub period_start: Option<DateTime<Utc>>,
    pub period_end: Option<DateTime<Utc>>,
    pub created: DateTime<Utc>,
    /// Stripe's page for the invoice.
    pub hosted_invoice_url: Option<String>,
    /// The invoice as a PDF.
    pub invoice_pdf_url: Option<String>,
}

/// One page of invoices.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct InvoiceList {
    pub data: Vec<InvoiceAnswer>,
    /// More invoices follow: ask again with `starting_after` set to the last `id`.
    pub has_more: bool,
}

/// The query as sent; numbers are parsed here so a bad one names its field.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// Invoices per page, 1 to 100 (default 10).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// The `id` of the last invoice of the previous page.
    pub starting_after: Option<String>,
}

fn invoice(i: Invoice) -> InvoiceAnswer {
    InvoiceAnswer {
        id: i.stripe_invoice_id,
        number: i.number,
        status: i.status,
        currency: i.currency,
        amount_due_cents: i.amount_due,
        amount_paid_cents: i.amount_paid,
        period_start: i.period_start,
        period_end: i.period_end,
        created: i.created,
        // Checked again here: rows stored before links were checked on the way in may hold
        // anything.
        hosted_invoice_url: safe_external_url_owned(i.hosted_invoice_url),
        invoice_pdf_url: safe_external_url_owned(i.invoice_pdf),
    }
}

/// The page asked for: (limit, cursor).
fn page_of(raw: Option<&str>) -> Result<(u32, Option<String>), ApiError> {
    let query: InvoiceQuery = serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|e| {
        let message = e.to_string();
        let field = message.split('`').nth(1).unwrap_or("query").to_owned();
        ApiError::invalid(field, format!("The query is not valid: {message}"))
    })?;
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_INVOICE_PAGE).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    "limit",
                    format!("limit must be a whole number from 1 to {MAX_INVOICE_PAGE}."),
                )
            })?,
    };
    let cursor = match query.starting_after {
        Some(id)
            if id.is_empty()
                || id.chars().count() > MAX_CURSOR_LEN
                || !crate::text::is_clean(&id) =>
        {
            return Err(ApiError::invalid(
                "starting_after",
                "starting_after must be the id of an invoice from the previous page.",
            ))
        }
        cursor => cursor,
    };
    Ok((limit, cursor))
}

/// The organization's invoices.
///
/// Newest first, with links to Stripe's hosted page and PDF. Paged with `limit` and
/// `starting_after` (the last `id` of the page before); `has_more` says whether another page
/// follows.
#[utoipa::path(
    get,
    path = "/api/v1/invoices",
    operation_id = "list_invoices",
    tag = "billing",
    security(("api_key" = ["billing:read"])),
    params(InvoiceQuery),
    responses(
        (status = 200, description = "A page of the organization's invoices, newest first", body = InvoiceList),
        (status = 401, description = "Missing, wrong or revoked API key", body = super::openapi::ErrorAnswer),
        (status = 403, description = "The key lacks the `billing:read` scope", body = super::openapi::ErrorAnswer),
        (status = 422, description = "`limit` is out of range, `starting_after` is not one of the organization's invoices, or an unknown parameter (`invalid_field`, with `field`)", body = super::openapi::ErrorAnswer),
        (status = 429, description = "The key's `read` rate limit is used up (`rate_limited`), or too many wrong API keys from this address (`too_many_wrong_keys`); see Retry-After", body = super::openapi::ErrorAnswer),
        (status = 503, description = "The portal's database could not answer; retry", body = super::openapi::ErrorAnswer),
    )
)]
pub async fn list(
    State(state): State<AppState>,
    caller: ApiCaller,
    RawQuery(query): RawQuery,
) -> Result<Json<InvoiceList>, ApiError> {
    caller.require(Scope::BillingRead)?;
    let (limit, cursor) = page_of(query.as_deref())?;
    let page = reads::invoice_page(&state.db, caller.org_id, cursor.as_deref(), limit)
        .await
        .map_err(|e| match e {
            InvoicePageError::UnknownCursor => ApiError::invalid(
                "starting_after",
                "starting_after is not one of this organization's invoices.",
            ),
            InvoicePageError::Database(e) => e.into(),
        })?;
    Ok(Json(InvoiceList {
        data: page.invoices.into_iter().map(invoice).collect(),
        has_more: page.has_more,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_read_from_limit_and_starting_after() {
        assert_eq!(page_of(None).ok(), Some((10, None)));
        assert_eq!(
            page_of(Some("limit=2&starting_after=in_123")).ok(),
            Some((2, Some("in_123".to_owned())))
        );
        assert_eq!(page_of(Some("limit=100")).ok(), Some((100, None)));
        for (query, field) in [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("limit=-1", "limit"),
            ("starting_after=", "starting_after"),
            ("starting_after=in%00x", "starting_after"),
            ("page=2", "page"),
        ] {
            let refused = page_of(Some(query));
            assert!(
                matches!(&refused, Err(e) if e.field.as_deref() == Some(field)),
                "{query}: {refused:?}"
            );
        }
    }
}
