//! A self-hosted billing portal: Leptos pages rendered on the server by axum, PostgreSQL through
//! sqlx. The pure domain types compile without the `ssr` feature; everything that does I/O needs it.

// serde_json's `json!` recurses once per key; Stripe objects have many keys.
#![recursion_limit = "256"]

pub mod accounts;
pub mod billing;
pub mod orgs;
pub mod text;
pub mod usage;

#[cfg(feature = "ssr")]
pub mod admin;
#[cfg(feature = "ssr")]
pub mod api;
#[cfg(feature = "ssr")]
pub mod cli;
#[cfg(feature = "ssr")]
pub mod config;
#[cfg(feature = "ssr")]
pub mod db;
#[cfg(feature = "ssr")]
pub mod error;
#[cfg(feature = "ssr")]
pub mod local_stripe;
#[cfg(feature = "ssr")]
pub mod seed;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod stripe_gateway;
#[cfg(feature = "ssr")]
pub mod web;

/// Browser entry point for the optional `hydrate` build: wakes up any `#[island]` components.
/// Every page works without it; none needs it yet.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_islands();
}
