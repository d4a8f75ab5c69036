//! The list calls that keep us in sync with Stripe: events since a moment (every page, newest
//! first, rebuilt as the JSON a webhook would have carried), an organization's subscriptions and
//! recent invoices, and the repair calls (a trial's new end).

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use stripe::StripeRequest;
use stripe_billing::invoice::ListInvoice;
use stripe_billing::subscription::{
    ListSubscription, ListSubscriptionStatus, UpdateSubscription, UpdateSubscriptionTrialEnd,
};
use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
use stripe_core::event::ListEvent;
use stripe_types::RangeQueryTs;

use super::billing_calls::snapshot as snapshot_of;
use super::{idempotent, Gateway, GatewayError};
use crate::billing::repo::Invoice;
use crate::billing::subscription::Snapshot;

type Result<T> = std::result::Result<T, GatewayError>;

/// What a failed list call was doing, for the error.
const ACTION: &str = "reading from Stripe's lists";

/// Largest page Stripe gives.
const PAGE: i64 = 100;

/// One event as Stripe's Events API listed it: the fields the inbox stores, and the JSON body.
#[derive(Debug, Clone)]
pub struct ListedEvent {
    pub id: String,
    pub kind: String,
    pub api_version: Option<String>,
    pub created: i64,
    pub payload: String,
}

/// What Stripe says about one customer, for the drift check.
#[derive(Debug, Clone)]
pub struct CustomerState {
    /// False when Stripe has no such customer (or it was deleted).
    pub exists: bool,
    /// Newest first.
    pub subscriptions: Vec<Snapshot>,
}

fn to_serde(value: &miniserde::json::Value) -> Value {
    serde_json::from_str(&miniserde::json::to_string(value)).unwrap_or(Value::Null)
}

fn listed(e: &stripe_shared::Event) -> ListedEvent {
    let mut data = json!({ "object": to_serde(&e.data.object) });
    if let Some(previous) = &e.data.previous_attributes {
        data["previous_attributes"] = to_serde(previous);
    }
    let body = json!({
        "id": e.id.as_str(),
        "object": "event",
        "api_version": e.api_version,
        "created": e.created,
        "data": data,
        "livemode": e.livemode,
        "pending_webhooks": e.pending_webhooks,
        "type": e.type_.as_str(),
    });
    ListedEvent {
        id: e.id.as_str().to_owned(),
        kind: e.type_.as_str().to_owned(),
        api_version: e.api_version.clone(),
        created: e.created,
        payload: body.to_string(),
    }
}

fn invoice_of(i: &stripe_shared::Invoice) -> Option<(String, Invoice)> {
    let at = |t: i64| Utc.timestamp_opt(t, 0).single();
    Some((
        i.customer.as_ref()?.id().as_str().to_owned(),
        Invoice {
            stripe_invoice_id: i.id.as_ref()?.as_str().to_owned(),
            number: i.number.clone(),
            status: i.status.as_ref().map(|s| s.as_str().to_owned())?,
            currency: i.currency.to_string(),
            amount_due: i.amount_due,
            amount_paid: i.amount_paid,
            period_start: at(i.period_start),
            period_end: at(i.period_end),
            hosted_invoice_url: i.hosted_invoice_url.clone(),
            invoice_pdf: i.invoice_pdf.clone(),
            created: at(i.created)?,
        },
    ))
}

impl Gateway {
    /// Every event created at or after `since`, newest first, following the cursors to the end.
    pub async fn events_since(&self, since: i64) -> Result<Vec<ListedEvent>> {
        let list = ListEvent::new()
            .created(RangeQueryTs::gte(since))
            .limit(PAGE);
        let mut events = Vec::new();
        let mut page = list
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe(ACTION, &e))?;
        loop {
            events.extend(page.data.iter().map(listed));
            let last = page.data.last().map(|e| e.id.as_str().to_owned());
            match last {
                Some(last) if page.has_more => {
                    page = list
                        .clone()
                        .starting_after(last)
                        .send(self.client())
                        .await
                        .map_err(|e| GatewayError::from_stripe(ACTION, &e))?;
                }
                _ => return Ok(events),
            }
        }
    }

    /// The customer's subscriptions of any status, newest first.
    pub async fn customer_state(&self, customer: &str) -> Result<CustomerState> {
        let found = RetrieveCustomer::new(customer.to_owned())
            .send(self.client())
            .await;
        let exists = match found {
            Ok(RetrieveCustomerReturned::Customer(_)) => true,
            Ok(RetrieveCustomerReturned::DeletedCustomer(_)) => false,
            Err(stripe::StripeError::Stripe(_, 404)) => false,
            Err(e) => return Err(GatewayError::from_stripe(ACTION, &e)),
        };
        if !exists {
            return Ok(CustomerState {
                exists,
                subscriptions: Vec::new(),
            });
        }
        let list = ListSubscription::new()
            .customer(customer)
            .status(ListSubscriptionStatus::All)
            .limit(PAGE);
        let mut subscriptions = Vec::new();
        let mut page = list
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe(ACTION, &e))?;
        loop {
            subscriptions.extend(page.data.iter().map(snapshot_of));
            let last = page.data.last().map(|s| s.id.as_str().to_owned());
            match last {
                Some(last) if page.has_more => {
                    page = list
                        .clone()
                        .starting_after(last)
                        .send(self.client())
                        .await
                        .map_err(|e| GatewayError::from_stripe(ACTION, &e))?;
                }
                _ => break,
            }
        }
        Ok(CustomerState {
            exists,
            subscriptions,
        })
    }

    /// The customer's invoices created since `since`, newest first.
    pub async fn invoices_since(
        &self,
        customer: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<Invoice>> {
        let list = ListInvoice::new()
            .customer(customer)
            .created(RangeQueryTs::gte(since.timestamp()))
            .limit(PAGE);
        let mut invoices = Vec::new();
        let mut page = list
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe(ACTION, &e))?;
        loop {
            invoices.extend(page.data.iter().filter_map(invoice_of).map(|(_, i)| i));
            let last = page
                .data
                .last()
                .and_then(|i| i.id.as_ref())
                .map(|id| id.as_str().to_owned());
            match last {
                Some(last) if page.has_more => {
                    page = list
                        .clone()
                        .starting_after(last)
                        .send(self.client())
                        .await
                        .map_err(|e| GatewayError::from_stripe(ACTION, &e))?;
                }
                _ => return Ok(invoices),
            }
        }
    }

    /// Moves a trialing subscription's trial end to `end`. `key` is our own id for the action.
    pub async fn set_trial_end(&self, sub_id: &str, end: i64, key: &str) -> Result<Snapshot> {
        let sub = UpdateSubscription::new(sub_id.to_owned())
            .trial_end(UpdateSubscriptionTrialEnd::Timestamp(end))
            .customize()
            .request_strategy(idempotent(&format!("trial-end-{key}")))
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("extending the trial", &e))?;
        Ok(snapshot_of(&sub))
    }
}
