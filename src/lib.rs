//! A self-hosted billing portal: Leptos pages rendered on the server by axum, PostgreSQL through
//! sqlx. The pure domain types compile without the `ssr` feature; everything that does I/O needs it.

// serde_json's `json!` recurses once per key; Stripe objects have many keys.
#![recursion_limit = "256"]

pub mod accounts;
pub mod admin;
pub mod api;
pub mod app;
pub mod audit;
pub mod billing;
pub mod notify;
pub mod orgs;
pub mod revenue;
pub mod text;
pub mod usage;

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
pub mod observability;
#[cfg(feature = "ssr")]
pub mod seed;
#[cfg(feature = "ssr")]
pub mod seed_history;
#[cfg(feature = "ssr")]
pub mod shutdown;
#[cfg(feature = "ssr")]
pub mod startup;
#[cfg(feature = "ssr")]
pub mod stripe_gateway;
pub mod sync;
pub mod web;

/// Browser entry point of the optional `hydrate` build (the standard one of Leptos' start-axum
/// template): takes over the server-rendered page, so forms answer without reloading. Every page
/// works without it.
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    leptos::mount::hydrate_body(app::App);
}
