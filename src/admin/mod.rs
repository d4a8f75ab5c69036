//! Pages for platform operators: every organization's billing and credits, the webhook event log
//! with replay. The pages (`pages`) compile for the server and the browser; what their server
//! functions do (`forms`, each refusing with 403 anyone without the platform admin flag) and
//! their SQL (`queries`) are server only.

#[cfg(feature = "ssr")]
pub mod forms;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod queries;
