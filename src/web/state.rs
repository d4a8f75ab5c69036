//! The state every handler can reach.

use std::sync::Arc;

use sqlx::PgPool;

use crate::accounts::rate_limit::LoginLimiter;
use crate::billing::catalog::Catalog;
use crate::billing::webhooks::Inbox;
use crate::stripe_gateway::Gateway;
use crate::web::csrf::CsrfKey;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    /// Signs anti-forgery tokens (from SECRET_KEY).
    pub csrf: CsrfKey,
    pub login_limiter: Arc<LoginLimiter>,
    /// Sign-ups, new organizations and invitations, per address, account and inviter.
    pub throttles: Arc<crate::web::throttle::Throttles>,
    /// How long an invitation stays valid.
    pub invitation_days: u32,
    pub catalog: Arc<Catalog>,
    pub stripe: Gateway,
    pub inbox: Inbox,
    /// The address people use, for links sent to Stripe (Checkout's success and cancel pages).
    pub public_url: Arc<str>,
    /// Records billable actions (group commit).
    pub usage: crate::usage::writer::UsageWriter,
    /// API keys and entitlements cached in memory.
    pub api: crate::api::ApiState,
    /// Wakes the auto top-up worker.
    pub top_up: Arc<tokio::sync::Notify>,
}
