//! The Stripe calls behind the billing pages: customers, trials, Checkout, plan changes, the
//! customer portal. Each change carries an idempotency key built from our own ids.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use stripe::StripeRequest;
use stripe_billing::billing_portal_session::CreateBillingPortalSession;
use stripe_billing::invoice::{
    CreatePreviewInvoice, CreatePreviewInvoiceSubscriptionDetails,
    CreatePreviewInvoiceSubscriptionDetailsItems,
    CreatePreviewInvoiceSubscriptionDetailsProrationBehavior,
};
use stripe_billing::subscription::{
    CancelSubscription, CreateSubscription, CreateSubscriptionItems,
    CreateSubscriptionTrialSettings, CreateSubscriptionTrialSettingsEndBehavior,
    CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod, RetrieveSubscription,
    UpdateSubscription, UpdateSubscriptionItems, UpdateSubscriptionPaymentBehavior,
    UpdateSubscriptionProrationBehavior,
};
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionSubscriptionData,
    RetrieveCheckoutSession,
};
use stripe_core::customer::CreateCustomer;
use stripe_product::price::ListPrice;
use stripe_shared::CheckoutSessionMode;
use uuid::Uuid;

use super::{idempotent, Gateway, GatewayError};
use crate::billing::subscription::Snapshot;
use crate::web::links::safe_external_url;

type Result<T> = std::result::Result<T, GatewayError>;

fn at(ts: Option<i64>) -> Option<DateTime<Utc>> {
    ts.and_then(|t| Utc.timestamp_opt(t, 0).single())
}

pub(super) fn snapshot(sub: &stripe_shared::Subscription) -> Snapshot {
    let item = sub.items.data.first();
    Snapshot {
        id: sub.id.as_str().to_owned(),
        customer: sub.customer.id().as_str().to_owned(),
        status: sub.status.as_str().to_owned(),
        price_lookup_key: item.and_then(|i| i.price.lookup_key.clone()),
        trial_end: at(sub.trial_end),
        current_period_start: at(item.map(|i| i.current_period_start)),
        current_period_end: at(item.map(|i| i.current_period_end)),
        cancel_at_period_end: sub.cancel_at_period_end,
        org_hint: sub.metadata.get("org_id").cloned(),
    }
}

/// A Checkout Session as the success page needs it.
#[derive(Debug, Clone)]
pub struct CheckoutState {
    pub id: String,
    pub complete: bool,
    /// A one-time payment (a credit pack) rather than a subscription.
    pub payment_mode: bool,
    pub paid: bool,
    pub payment_intent_id: Option<String>,
    pub subscription_id: Option<String>,
    pub org_reference: Option<String>,
}

pub struct CheckoutLink {
    pub id: String,
    pub url: String,
}

impl Gateway {
    /// Creates the organization's Stripe customer. The key makes a retry return the same one.
    pub async fn create_customer(&self, org_id: Uuid, name: &str, email: &str) -> Result<String> {
        let customer = CreateCustomer::new()
            .name(name)
            .email(email)
            .metadata(HashMap::from([("org_id".to_owned(), org_id.to_string())]))
            .customize()
            .request_strategy(idempotent(&format!("customer:{org_id}")))
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("creating the Stripe customer", &e))?;
        Ok(customer.id.as_str().to_owned())
    }

    /// The id of the active price with this lookup key.
    pub async fn price_id(&self, lookup_key: &str) -> Result<String> {
        let prices = ListPrice::new()
            .lookup_keys(vec![lookup_key.to_owned()])
            .active(true)
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe(format!("finding price {lookup_key}"), &e))?;
        prices
            .data
            .first()
            .map(|p| p.id.as_str().to_owned())
            .ok_or_else(|| {
                GatewayError::failed(
                    format!("finding price {lookup_key}"),
                    "no Stripe price has this lookup key; run `billing-portal stripe-sync`",
                )
            })
    }

    /// A trial without a card: it ends the subscription if no payment method is added.
    pub async fn start_trial(
        &self,
        org_id: Uuid,
        customer: &str,
        price_id: &str,
        days: u32,
    ) -> Result<Snapshot> {
        let mut item = CreateSubscriptionItems::new();
        item.price = Some(price_id.to_owned());
        let mut end = CreateSubscriptionTrialSettingsEndBehavior::new();
        end.missing_payment_method =
            Some(CreateSubscriptionTrialSettingsEndBehaviorMissingPaymentMethod::Cancel);
        let sub = CreateSubscription::new()
            .customer(customer)
            .items(vec![item])
            .trial_period_days(days)
            .trial_settings(CreateSubscriptionTrialSettings::new(end))
            .metadata(HashMap::from([("org_id".to_owned(), org_id.to_string())]))
            .customize()
            // One trial per organization, ever.
            .request_strategy(idempotent(&format!("trial:{org_id}")))
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("starting the trial", &e))?;
        Ok(snapshot(&sub))
    }

    pub async fn create_checkout(
        &self,
        org_id: Uuid,
        customer: &str,
        price_id: &str,
        success_url: &str,
        cancel_url: &str,
        attempt: Uuid,
    ) -> Result<CheckoutLink> {
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(price_id.to_owned());
        item.quantity = Some(1);
        let mut data = CreateCheckoutSessionSubscriptionData::new();
        data.metadata = Some(HashMap::from([("org_id".to_owned(), org_id.to_string())]));
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Subscription)
            .customer(customer)
            .client_reference_id(org_id.to_string())
            .metadata(HashMap::from([("org_id".to_owned(), org_id.to_string())]))
            .line_items(vec![item])
            .subscription_data(data)
            .success_url(success_url)
            .cancel_url(cancel_url)
            .customize()
            .request_strategy(idempotent(&format!("checkout:{attempt}")))
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("creating the Checkout Session", &e))?;
        // The customer is sent there: only an https (or loopback emulator) link will do.
        let url = session
            .url
            .clone()
            .filter(|u| safe_external_url(u).is_some())
            .ok_or_else(|| {
                GatewayError::failed(
                    "creating the Checkout Session",
                    "Stripe returned a Checkout Session without a safe https URL",
                )
            })?;
        Ok(CheckoutLink {
            id: session.id.as_str().to_owned(),
            url,
        })
    }

    pub async fn retrieve_checkout(&self, id: &str) -> Result<CheckoutState> {
        let session = RetrieveCheckoutSession::new(id.to_owned())
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("retrieving the Checkout Session", &e))?;
        Ok(CheckoutState {
            id: session.id.as_str().to_owned(),
            complete: session.status.as_ref().map(|s| s.as_str()) == Some("complete"),
            payment_mode: session.mode == CheckoutSessionMode::Payment,
            paid: session.payment_status.as_str() == "paid",
            payment_intent_id: session
                .payment_intent
                .as_ref()
                .map(|p| p.id().as_str().to_owned()),
            subscription_id: session
                .subscription
                .as_ref()
                .map(|s| s.id().as_str().to_owned()),
            org_reference: session.client_reference_id.clone(),
        })
    }

    pub async fn retrieve_subscription(&self, id: &str) -> Result<Snapshot> {
        let sub = RetrieveSubscription::new(id.to_owned())
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("retrieving the subscription", &e))?;
        Ok(snapshot(&sub))
    }

    async fn first_item(&self, sub_id: &str) -> Result<String> {
        let sub = RetrieveSubscription::new(sub_id.to_owned())
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("retrieving the subscription", &e))?;
        sub.items
            .data
            .first()
            .map(|i| i.id.as_str().to_owned())
            .ok_or_else(|| {
                GatewayError::failed(
                    "retrieving the subscription",
                    format!("subscription {sub_id} has no items"),
                )
            })
    }

    /// What switching to `price_id` now would charge today (Stripe's invoice preview).
    pub async fn preview_upgrade(&self, sub_id: &str, price_id: &str) -> Result<(i64, String)> {
        let mut item = CreatePreviewInvoiceSubscriptionDetailsItems::new();
        item.id = Some(self.first_item(sub_id).await?);
        item.price = Some(price_id.to_owned());
        let mut details = CreatePreviewInvoiceSubscriptionDetails::new();
        details.items = Some(vec![item]);
        details.proration_behavior =
            Some(CreatePreviewInvoiceSubscriptionDetailsProrationBehavior::AlwaysInvoice);
        let invoice = CreatePreviewInvoice::new()
            .subscription(sub_id)
            .subscription_details(details)
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("previewing the change", &e))?;
        Ok((invoice.amount_due, invoice.currency.to_string()))
    }

    /// Switches the price: now with proration charged at once (upgrade), or without proration so
    /// the lower price applies from the next renewal (downgrade).
    pub async fn change_price(
        &self,
        sub_id: &str,
        price_id: &str,
        prorate_now: bool,
        attempt: Uuid,
    ) -> Result<Snapshot> {
        let mut item = UpdateSubscriptionItems::new();
        item.id = Some(self.first_item(sub_id).await?);
        item.price = Some(price_id.to_owned());
        let sub = UpdateSubscription::new(sub_id.to_owned())
            .items(vec![item])
            .proration_behavior(if prorate_now {
                UpdateSubscriptionProrationBehavior::AlwaysInvoice
            } else {
                UpdateSubscriptionProrationBehavior::None
            })
            .payment_behavior(UpdateSubscriptionPaymentBehavior::ErrorIfIncomplete)
            .customize()
            .request_strategy(idempotent(&format!("change:{attempt}")))
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("changing the plan", &e))?;
        Ok(snapshot(&sub))
    }

    pub async fn set_cancel_at_period_end(&self, sub_id: &str, cancel: bool) -> Result<Snapshot> {
        let sub = UpdateSubscription::new(sub_id.to_owned())
            .cancel_at_period_end(cancel)
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("updating the cancellation", &e))?;
        Ok(snapshot(&sub))
    }

    pub async fn cancel_now(&self, sub_id: &str) -> Result<Snapshot> {
        let sub = CancelSubscription::new(sub_id.to_owned())
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("canceling the subscription", &e))?;
        Ok(snapshot(&sub))
    }

    pub async fn portal_url(&self, customer: &str, return_url: &str) -> Result<String> {
        let session = CreateBillingPortalSession::new()
            .customer(customer)
            .return_url(return_url)
            .send(self.client())
            .await
            .map_err(|e| GatewayError::from_stripe("opening the billing portal", &e))?;
        // The customer is sent there: only an https (or loopback emulator) link will do.
        safe_external_url(&session.url)
            .map(str::to_owned)
            .ok_or_else(|| {
                GatewayError::failed(
                    "opening the billing portal",
                    "Stripe returned a billing portal without a safe URL",
                )
            })
    }
}
