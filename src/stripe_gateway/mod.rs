//! The one place that talks to Stripe. async-stripe types stay in here; the rest of the portal
//! sees our own types. Every call that changes something in Stripe carries an idempotency key
//! derived from our own ids, and the API version is the one async-stripe pins.

pub mod billing_calls;
pub mod catalog_sync;
pub mod credit_calls;
pub mod demo_calls;
pub mod error;
pub mod events;
pub mod signature;
pub mod sync_calls;

pub use error::GatewayError;

use std::time::Duration;

use stripe::{Client, ClientBuilder, IdempotencyKey, RequestStrategy};

/// Where the portal's Stripe is: real Stripe with a key, or an emulator at a base URL.
#[derive(Clone)]
pub struct Gateway {
    client: Client,
}

/// How long one Stripe call may take unless configured (`STRIPE_TIMEOUT_SECONDS`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Gateway {
    /// `api_base` points at a Stripe-compatible server (the emulator); `None` means Stripe itself.
    pub fn new(secret_key: &str, api_base: Option<&str>) -> anyhow::Result<Self> {
        Self::with_timeout(secret_key, api_base, DEFAULT_TIMEOUT)
    }

    /// [`Gateway::new`] with calls that give up after `timeout` (then the error is
    /// [`GatewayError::Unreachable`]: nothing we asked for is recorded on our side).
    pub fn with_timeout(
        secret_key: &str,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let mut builder = ClientBuilder::new(secret_key).timeout(timeout);
        if let Some(base) = api_base {
            let base = if base.ends_with('/') {
                base.to_owned()
            } else {
                format!("{base}/")
            };
            builder = builder.url(base);
        }
        let client = builder
            .build()
            .map_err(|e| anyhow::anyhow!("configuring the Stripe client: {e}"))?;
        Ok(Self { client })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// An idempotency key for a change we make in Stripe, derived from our own identifiers so a
/// retried request never does the same thing twice.
pub fn idempotent(key: &str) -> RequestStrategy {
    match IdempotencyKey::new(key) {
        Ok(key) => RequestStrategy::Idempotent(key),
        // Keys are at most 255 characters; ours are far shorter, but never fail over it.
        Err(_) => RequestStrategy::Once,
    }
}

/// A Stripe error in words fit for a log line (no secrets are in it).
pub fn describe(e: &stripe::StripeError) -> String {
    match e {
        stripe::StripeError::Stripe(err, status) => format!(
            "Stripe answered {status}: {}",
            err.message.as_deref().unwrap_or("no message")
        ),
        other => format!("{other}"),
    }
}
