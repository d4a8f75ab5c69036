//! What the server is built from, in one place: the composition root hands it to the JSON API
//! and the webhook receiver as axum state, and to pages and server functions as typed context,
//! one value per type ([`AppState::provide`]), so a page asks for the one thing it needs
//! (`web::caller::dep`).

use std::sync::Arc;

use sqlx::PgPool;

use crate::accounts::rate_limit::LoginLimiter;
use crate::billing::catalog::Catalog;
use crate::billing::webhooks::Inbox;
use crate::stripe_gateway::Gateway;
use crate::web::csrf::CsrfKey;

/// How long an invitation stays valid, in days.
#[derive(Clone, Copy, Debug)]
pub struct InvitationDays(pub u32);

/// The address people use, for links sent to Stripe.
#[derive(Clone, Debug)]
pub struct PublicUrl(pub Arc<str>);

/// Wakes the auto top-up worker.
#[derive(Clone)]
pub struct TopUpSignal(pub Arc<tokio::sync::Notify>);

/// The server's parts, shared: every request clones its state (axum's `State`, leptos_axum's
/// handlers), so it is one counted reference rather than a copy of each part.
#[derive(Clone)]
pub struct AppState(Arc<Parts>);

impl AppState {
    pub fn new(parts: Parts) -> Self {
        Self(Arc::new(parts))
    }
}

impl std::ops::Deref for AppState {
    type Target = Parts;

    fn deref(&self) -> &Parts {
        &self.0
    }
}

pub struct Parts {
    /// The site configuration (`Leptos.toml`).
    pub leptos: leptos::config::LeptosOptions,
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
    /// Signed-in users and their memberships, kept in memory between page views.
    pub viewers: crate::orgs::viewers::Viewers,
}

impl axum::extract::FromRef<AppState> for leptos::config::LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos.clone()
    }
}

impl AppState {
    /// Provides each dependency as its own context value, for the pages and server functions of
    /// one request.
    pub fn provide(&self) {
        use leptos::prelude::provide_context;
        provide_context(self.db.clone());
        provide_context(self.csrf.clone());
        provide_context(self.login_limiter.clone());
        provide_context(self.throttles.clone());
        provide_context(InvitationDays(self.invitation_days));
        provide_context(self.catalog.clone());
        provide_context(self.stripe.clone());
        provide_context(self.inbox.clone());
        provide_context(PublicUrl(self.public_url.clone()));
        provide_context(self.usage.clone());
        provide_context(self.api.clone());
        provide_context(TopUpSignal(self.top_up.clone()));
        provide_context(self.viewers.clone());
    }
}
