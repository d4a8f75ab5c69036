//! What every page shares: application state, the layout shell, rendering Leptos views to HTML,
//! anti-forgery checks on forms, the Origin check, security headers, safe redirect targets, flash
//! messages, static assets and the health check.

pub mod assets;
pub mod context;
pub mod csrf;
pub mod flash;
pub mod headers;
pub mod health;
pub mod layout;
pub mod origin;
pub mod redirect;
pub mod state;
