//! What every page shares: application state, the layout shell, rendering Leptos views to HTML,
//! anti-forgery checks on forms, the Origin check, security headers, safe redirect targets, flash
//! messages, static assets, the health check, input hygiene and the check on external links.

pub mod assets;
pub mod context;
pub mod csrf;
pub mod flash;
pub mod format;
pub mod headers;
pub mod health;
pub mod hygiene;
pub mod layout;
pub mod links;
pub mod origin;
pub mod redirect;
pub mod state;
pub mod throttle;
