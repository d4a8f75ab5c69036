//! What every page shares. Compiled for the server and the browser: the page layout and form
//! components, the chrome around each page (navigation, flash), the errors server functions
//! answer, and money and date formatting. Server only: who is asking and the guards on them,
//! application state, anti-forgery checks, form state kept between a post and its redirect, the
//! Origin check, security headers, safe redirect targets, flash storage, static assets, the
//! health check, input hygiene and the check on external links.

pub mod chrome;
pub mod format;
pub mod layout;
pub mod page_error;

#[cfg(feature = "ssr")]
pub mod assets;
#[cfg(feature = "ssr")]
pub mod caller;
#[cfg(feature = "ssr")]
pub mod csrf;
#[cfg(feature = "ssr")]
pub mod flash;
#[cfg(feature = "ssr")]
pub mod form_body;
#[cfg(feature = "ssr")]
pub mod form_state;
#[cfg(feature = "ssr")]
pub mod headers;
#[cfg(feature = "ssr")]
pub mod health;
#[cfg(feature = "ssr")]
pub mod hygiene;
#[cfg(feature = "ssr")]
pub mod links;
#[cfg(feature = "ssr")]
pub mod origin;
#[cfg(feature = "ssr")]
pub mod redirect;
#[cfg(feature = "ssr")]
pub mod state;
#[cfg(feature = "ssr")]
pub mod throttle;
#[cfg(feature = "ssr")]
pub mod whole_page;
