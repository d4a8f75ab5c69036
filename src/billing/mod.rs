//! Billing: the plan catalog, and (with `ssr`) subscriptions and their lifecycle: the use cases
//! (`use_cases`), the projection of Stripe's state (`service`), the reads behind the pages
//! (`reads`), their SQL (`repo`), the pages (`pages`, for the server and the browser) and what
//! their server functions do (`forms`).

pub mod catalog;
pub mod subscription;

#[cfg(feature = "ssr")]
pub mod dashboard_card;
#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod inbox_writer;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod reads;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod use_cases;
#[cfg(feature = "ssr")]
pub mod webhooks;

#[cfg(feature = "ssr")]
pub use dashboard_card::dashboard_card;
