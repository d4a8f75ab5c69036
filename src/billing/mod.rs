//! Billing: the plan catalog, what a plan allows (`limits`: features, gauges, seats, plan
//! changes over a limit; pure), the plan card of the organization's dashboard
//! (`dashboard_card`), the pages (`pages`, and the public price list `pricing`, for the server
//! and the browser), and (with `ssr`) subscriptions and their lifecycle: the use cases
//! (`use_cases`), the feature check (`feature_service`), the projection of Stripe's state
//! (`service`), the reads behind the pages (`reads`), their SQL (`repo`) and what the pages'
//! server functions do (`forms`).

pub mod catalog;
pub mod dashboard_card;
pub mod limits;
pub mod subscription;

#[cfg(feature = "ssr")]
pub mod feature_service;
#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod inbox_writer;
#[cfg(feature = "ssr")]
pub mod lifecycle_mail;
pub mod pages;
pub mod pricing;
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
