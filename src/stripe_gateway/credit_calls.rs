//! The Stripe calls behind credits: a Checkout Session that sells credit packs (payment mode,
//! saving the card for later top-ups) and an off-session charge for auto top-up.

use std::collections::HashMap;

use stripe::StripeRequest;
use stripe_checkout::checkout_session::{
    CreateCheckoutSession, CreateCheckoutSessionLineItems, CreateCheckoutSessionPaymentIntentData,
    CreateCheckoutSessionPaymentIntentDataSetupFutureUsage,
};
use stripe_core::customer::{RetrieveCustomer, RetrieveCustomerReturned};
use stripe_core::payment_intent::{
    CreatePaymentIntent, CreatePaymentIntentOffSession, RetrievePaymentIntent,
};
use stripe_payment::payment_method::RetrievePaymentMethod;
use stripe_shared::{CheckoutSessionMode, PaymentIntentStatus};
use uuid::Uuid;

use super::billing_calls::CheckoutLink;
use super::{describe, idempotent, Gateway};
use crate::web::links::safe_external_url;

type Result<T> = std::result::Result<T, anyhow::Error>;

/// A credit pack purchase to sell through Checkout.
pub struct PackCheckout<'a> {
    pub org_id: Uuid,
    pub purchase_id: Uuid,
    pub customer: &'a str,
    pub price_id: &'a str,
    pub packs: i64,
    pub success_url: &'a str,
    pub cancel_url: &'a str,
}

/// How an off-session charge ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChargeOutcome {
    Succeeded {
        payment_intent_id: String,
    },
    /// The card was declined or needs the customer; the message is Stripe's, fit to show.
    Failed {
        message: String,
    },
}

impl Gateway {
    pub async fn create_pack_checkout(&self, pack: PackCheckout<'_>) -> Result<CheckoutLink> {
        let metadata = HashMap::from([
            ("org_id".to_owned(), pack.org_id.to_string()),
            (
                "credit_purchase_id".to_owned(),
                pack.purchase_id.to_string(),
            ),
            ("packs".to_owned(), pack.packs.to_string()),
        ]);
        let mut item = CreateCheckoutSessionLineItems::new();
        item.price = Some(pack.price_id.to_owned());
        item.quantity = Some(pack.packs as u64);
        let mut intent = CreateCheckoutSessionPaymentIntentData::new();
        intent.metadata = Some(metadata.clone());
        // Keep the card for auto top-up, which charges it later without the customer.
        intent.setup_future_usage =
            Some(CreateCheckoutSessionPaymentIntentDataSetupFutureUsage::OffSession);
        let session = CreateCheckoutSession::new()
            .mode(CheckoutSessionMode::Payment)
            .customer(pack.customer)
            .client_reference_id(pack.org_id.to_string())
            .metadata(metadata)
            .line_items(vec![item])
            .payment_intent_data(intent)
            .success_url(pack.success_url)
            .cancel_url(pack.cancel_url)
            .customize()
            .request_strategy(idempotent(&format!("pack_checkout:{}", pack.purchase_id)))
            .send(self.client())
            .await
            .map_err(|e| anyhow::anyhow!("creating the Checkout Session: {}", describe(&e)))?;
        // The customer is sent there: only an https (or loopback emulator) link will do.
        let url = session
            .url
            .clone()
            .filter(|u| safe_external_url(u).is_some())
            .ok_or_else(|| {
                anyhow::anyhow!("Stripe returned a Checkout Session without a safe https URL")
            })?;
        Ok(CheckoutLink {
            id: session.id.as_str().to_owned(),
            url,
        })
    }

    /// The fingerprint of the customer's default card (Stripe's id for a card number, the same
    /// across customers), when one is on file.
    pub async fn default_card_fingerprint(&self, customer: &str) -> Result<Option<String>> {
        let found = RetrieveCustomer::new(customer.to_owned())
            .send(self.client())
            .await
            .map_err(|e| anyhow::anyhow!("retrieving the customer: {}", describe(&e)))?;
        let RetrieveCustomerReturned::Customer(c) = found else {
            return Ok(None);
        };
        let Some(card) = c
            .invoice_settings
            .and_then(|s| s.default_payment_method)
            .map(|pm| pm.id().as_str().to_owned())
        else {
            return Ok(None);
        };
        let method = RetrievePaymentMethod::new(card)
            .send(self.client())
            .await
            .map_err(|e| anyhow::anyhow!("retrieving a payment method: {}", describe(&e)))?;
        Ok(method.card.and_then(|c| c.fingerprint))
    }

    /// The card to charge without the customer: the customer's default, else the one that paid
    /// an earlier purchase.
    async fn saved_card(
        &self,
        customer: &str,
        earlier_intent: Option<&str>,
    ) -> Result<Option<String>> {
        let found = RetrieveCustomer::new(customer.to_owned())
            .send(self.client())
            .await
            .map_err(|e| anyhow::anyhow!("retrieving the customer: {}", describe(&e)))?;
        if let RetrieveCustomerReturned::Customer(c) = found {
            let default = c
                .invoice_settings
                .and_then(|s| s.default_payment_method)
                .map(|pm| pm.id().as_str().to_owned());
            if default.is_some() {
                return Ok(default);
            }
        }
        let Some(intent) = earlier_intent else {
            return Ok(None);
        };
        let intent = RetrievePaymentIntent::new(intent.to_owned())
            .send(self.client())
            .await
            .map_err(|e| anyhow::anyhow!("retrieving a payment: {}", describe(&e)))?;
        Ok(intent.payment_method.map(|pm| pm.id().as_str().to_owned()))
    }

    /// Charges a top-up off-session. The purchase id keys the request, so a retry after a crash
    /// returns the same payment instead of charging twice.
    pub async fn charge_top_up(
        &self,
        org_id: Uuid,
        purchase_id: Uuid,
        customer: &str,
        earlier_intent: Option<&str>,
        amount_cents: i64,
        currency: &str,
    ) -> Result<ChargeOutcome> {
        let Some(card) = self.saved_card(customer, earlier_intent).await? else {
            return Ok(ChargeOutcome::Failed {
                message: "No saved card to charge. Buy a pack once to save one.".to_owned(),
            });
        };
        let currency: stripe_types::Currency = currency
            .parse()
            .map_err(|_| anyhow::anyhow!("unknown currency {currency}"))?;
        let request = CreatePaymentIntent::new(amount_cents, currency)
            .customer(customer)
            .payment_method(card)
            .confirm(true)
            .off_session(CreatePaymentIntentOffSession::Bool(true))
            .description("Credit auto top-up")
            .metadata(HashMap::from([
                ("org_id".to_owned(), org_id.to_string()),
                ("credit_purchase_id".to_owned(), purchase_id.to_string()),
            ]))
            .customize()
            .request_strategy(idempotent(&format!("top_up:{purchase_id}")))
            .send(self.client())
            .await;
        match request {
            Ok(intent) if intent.status == PaymentIntentStatus::Succeeded => {
                Ok(ChargeOutcome::Succeeded {
                    payment_intent_id: intent.id.as_str().to_owned(),
                })
            }
            Ok(intent) => Ok(ChargeOutcome::Failed {
                message: format!("The payment is {}.", intent.status.as_str()),
            }),
            Err(stripe::StripeError::Stripe(err, 402)) => Ok(ChargeOutcome::Failed {
                message: err
                    .message
                    .clone()
                    .unwrap_or_else(|| "The card was declined.".to_owned()),
            }),
            Err(e) => Err(anyhow::anyhow!("charging a top-up: {}", describe(&e))),
        }
    }
}
