//! An offline Stripe: a stateful server speaking Stripe's wire format for the part of Stripe a
//! billing portal uses (customers, products and prices, Checkout, subscriptions, invoices, payment
//! intents, refunds, the customer portal, events, test clocks, webhooks), so a real Stripe client
//! (async-stripe, Stripe's own libraries) can be pointed at it with no account and no network.
//! State lives in PostgreSQL in its own schema (`stripe_emulator`, with its own migrations) and
//! survives restarts. It always runs on its own address, as Stripe lives on other origins than a
//! merchant's site, and accepts only the secret keys it was given ([`ApiKeys`]).
//!
//! Start it with [`serve::start`] (a program that embeds it, such as a demo or a test) or run the
//! `stripe-emulator` binary.
//!
//! Not emulated: Connect, taxes, coupons and discounts, multiple subscription items per update,
//! SetupIntents, disputes, payouts, and any payment method but cards.

// serde_json's `json!` recurses once per key; Stripe objects have many keys.
#![recursion_limit = "256"]
// Stripe errors carry several optional fields; they travel on the cold path only.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod billing;
pub mod cards;
pub mod error;
pub mod keys;
pub mod objects;
pub mod pages;
pub mod params;
pub mod pdf;
pub mod resources;
pub mod serve;
pub mod store;
pub mod urls;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use api::endpoint;
use billing::Engine;
pub use keys::ApiKeys;
use resources::*;
pub use serve::{Config, Running};
use store::Work;
pub use webhooks::EndpointConfig;

/// The schema the emulator keeps its state (and its migrations' record) in.
pub const SCHEMA: &str = "stripe_emulator";

/// The emulator: its database, the public URL its links use, the keys it accepts, and the
/// webhook sender's bell.
#[derive(Clone)]
pub struct Emulator {
    pub pool: PgPool,
    /// Where the emulator is reached, without a trailing slash (for example
    /// `http://127.0.0.1:12111`); hosted pages and invoice links start with it.
    pub base: Arc<str>,
    pub wake: Arc<Notify>,
    /// The secret keys API and control calls must present.
    pub keys: Arc<ApiKeys>,
}

/// How the emulator's background work behaves.
#[derive(Debug, Clone)]
pub struct Timing {
    /// How often the global clock's due work (renewals, trial ends, retries) is run.
    pub tick: Duration,
    /// The first webhook retry waits this long; each later one twice as long as the one before.
    pub webhook_retry_base: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            tick: Duration::from_secs(5),
            webhook_retry_base: Duration::from_secs(5),
        }
    }
}

impl Emulator {
    pub fn new(pool: PgPool, base: &str, keys: ApiKeys) -> Self {
        Self {
            pool,
            base: Arc::from(base.trim_end_matches('/')),
            wake: Arc::new(Notify::new()),
            keys: Arc::new(keys),
        }
    }

    /// The API base URL to give a Stripe client (async-stripe appends `v1/...`).
    pub fn api_base(&self) -> String {
        format!("{}/", self.base)
    }

    /// Starts webhook delivery and the global clock. Abort the handles to stop them.
    pub fn start_background(&self, timing: Timing) -> Vec<JoinHandle<()>> {
        let deliveries = tokio::spawn(webhooks::deliver_forever(
            self.pool.clone(),
            self.wake.clone(),
            timing.webhook_retry_base,
        ));
        let emulator = self.clone();
        let clock = tokio::spawn(async move {
            let mut tick = tokio::time::interval(timing.tick);
            loop {
                tick.tick().await;
                if let Err(e) = emulator.run_due_now().await {
                    tracing::warn!(error = %e.message, "emulator: running due work failed");
                }
            }
        });
        vec![deliveries, clock]
    }

    /// Turns duplicate, out-of-order delivery on or off.
    pub async fn set_chaos(&self, on: bool) -> Result<(), error::StripeError> {
        let mut work = Work::begin(&self.pool, None).await?;
        work.set_chaos(on).await?;
        work.commit().await?;
        Ok(())
    }

    /// Runs whatever has fallen due on the global clock.
    pub async fn run_due_now(&self) -> Result<usize, error::StripeError> {
        let mut work = Work::begin(&self.pool, None).await?;
        let now = work.global_now();
        let mut engine = Engine {
            w: &mut work,
            base: &self.base,
        };
        let ran = engine.run_due(None, now).await?;
        if work.commit().await? {
            self.wake.notify_one();
        }
        Ok(ran)
    }

    /// Every route: the API under `/v1`, its own controls under `/_emulator`, and the hosted
    /// pages. Anything else is Stripe's 404.
    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/v1/customers",
                post(endpoint!(customers::create)).get(endpoint!(customers::list)),
            )
            .route(
                "/v1/customers/{id}",
                get(endpoint!(customers::retrieve))
                    .post(endpoint!(customers::update))
                    .delete(endpoint!(customers::delete)),
            )
            .route(
                "/v1/customers/{id}/payment_methods",
                get(endpoint!(payments::list_customer_methods)),
            )
            .route(
                "/v1/products",
                post(endpoint!(catalog::create_product)).get(endpoint!(catalog::list_products)),
            )
            .route(
                "/v1/products/{id}",
                get(endpoint!(catalog::retrieve_product)).post(endpoint!(catalog::update_product)),
            )
            .route(
                "/v1/prices",
                post(endpoint!(catalog::create_price)).get(endpoint!(catalog::list_prices)),
            )
            .route(
                "/v1/prices/{id}",
                get(endpoint!(catalog::retrieve_price)).post(endpoint!(catalog::update_price)),
            )
            .route(
                "/v1/checkout/sessions",
                post(endpoint!(checkout::create)).get(endpoint!(checkout::list)),
            )
            .route(
                "/v1/checkout/sessions/{id}",
                get(endpoint!(checkout::retrieve)),
            )
            .route(
                "/v1/checkout/sessions/{id}/expire",
                post(endpoint!(checkout::expire)),
            )
            .route(
                "/v1/checkout/sessions/{id}/line_items",
                get(endpoint!(checkout::line_items)),
            )
            .route(
                "/v1/subscriptions",
                post(endpoint!(subscriptions::create)).get(endpoint!(subscriptions::list)),
            )
            .route(
                "/v1/subscriptions/{id}",
                get(endpoint!(subscriptions::retrieve))
                    .post(endpoint!(subscriptions::update))
                    .delete(endpoint!(subscriptions::cancel)),
            )
            .route(
                "/v1/subscriptions/{id}/resume",
                post(endpoint!(subscriptions::resume)),
            )
            .route("/v1/invoices", get(endpoint!(invoices::list)))
            .route(
                "/v1/invoices/create_preview",
                post(endpoint!(invoices::preview)),
            )
            .route("/v1/invoices/{id}", get(endpoint!(invoices::retrieve)))
            .route("/v1/invoices/{id}/lines", get(endpoint!(invoices::lines)))
            .route("/v1/invoices/{id}/pay", post(endpoint!(invoices::pay)))
            .route(
                "/v1/payment_intents",
                post(endpoint!(payments::create_intent)),
            )
            .route(
                "/v1/payment_intents/{id}",
                get(endpoint!(payments::retrieve_intent)),
            )
            .route(
                "/v1/payment_intents/{id}/confirm",
                post(endpoint!(payments::confirm_intent)),
            )
            .route(
                "/v1/payment_methods",
                get(endpoint!(payments::list_methods)),
            )
            .route(
                "/v1/payment_methods/{id}",
                get(endpoint!(payments::retrieve_method)),
            )
            .route(
                "/v1/payment_methods/{id}/attach",
                post(endpoint!(payments::attach_method)),
            )
            .route(
                "/v1/payment_methods/{id}/detach",
                post(endpoint!(payments::detach_method)),
            )
            .route(
                "/v1/charges/{id}",
                get(endpoint!(payments::retrieve_charge)),
            )
            .route("/v1/refunds", post(endpoint!(payments::create_refund)))
            .route(
                "/v1/refunds/{id}",
                get(endpoint!(payments::retrieve_refund)),
            )
            .route(
                "/v1/billing_portal/sessions",
                post(endpoint!(portal::create)),
            )
            .route("/v1/events", get(endpoint!(events::list)))
            .route("/v1/events/{id}", get(endpoint!(events::retrieve)))
            .route(
                "/v1/test_helpers/test_clocks",
                post(endpoint!(test_clocks::create)).get(endpoint!(test_clocks::list)),
            )
            .route(
                "/v1/test_helpers/test_clocks/{id}",
                get(endpoint!(test_clocks::retrieve)).delete(endpoint!(test_clocks::delete)),
            )
            .route(
                "/v1/test_helpers/test_clocks/{id}/advance",
                post(endpoint!(test_clocks::advance)),
            )
            .route(
                "/v1/webhook_endpoints",
                post(endpoint!(webhook_endpoints::create)).get(endpoint!(webhook_endpoints::list)),
            )
            .route(
                "/v1/webhook_endpoints/{id}",
                axum::routing::delete(endpoint!(webhook_endpoints::delete))
                    .get(endpoint!(webhook_endpoints::retrieve))
                    .post(endpoint!(webhook_endpoints::update)),
            )
            .route("/v1/{*rest}", axum::routing::any(api::unknown_route))
            .route("/_emulator/clock", get(endpoint!(control::clock)))
            .route(
                "/_emulator/clock/advance",
                post(endpoint!(control::advance)),
            )
            .route("/_emulator/chaos", post(endpoint!(control::chaos)))
            .route(
                "/_emulator/webhook_endpoints",
                post(endpoint!(control::register_endpoint)),
            )
            .route("/_emulator/deliveries", get(endpoint!(control::deliveries)))
            .route(
                "/checkout/{id}",
                get(pages::checkout_page).post(pages::checkout_pay),
            )
            .route("/portal/{id}", get(pages::portal_page))
            .route("/portal/{id}/card", post(pages::portal_card))
            .route(
                "/portal/{id}/subscriptions/{sub}/{action}",
                post(pages::portal_subscription),
            )
            .route("/invoices/{id}", get(pages::invoice_page))
            .route("/invoices/{id}/pdf", get(pages::invoice_pdf))
            .route(pages::STYLESHEET_PATH, get(pages::stylesheet))
            .fallback(pages::not_found)
            .with_state(self.clone())
            .layer(axum::middleware::map_response(pages::protect))
    }
}
