//! Revenue metrics for the operators (`/admin/metrics`): MRR and ARR, their movement, active
//! subscriptions per plan, trials, churn, Checkout, credit packs, net revenue and webhook health.
//!
//! The figures are computed by pure functions (`timeline`, `flows`, `figures`) from plain facts
//! the portal keeps in its own tables; their definitions are written once (`definitions`) and
//! shown on the page. A daily job (`snapshots`) stores each day's figures, once per day across
//! instances; the page reads those and today's live figure (`service`), never Stripe. The
//! charts (`chart`) and the CSV downloads (`csv`) are drawn from the same tables (`tables`).

pub mod chart;
pub mod csv;
pub mod definitions;
pub mod figures;
pub mod flows;
pub mod pages;
pub mod range;
pub mod tables;
pub mod timeline;

#[cfg(feature = "ssr")]
pub mod download;
#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod queries;
#[cfg(feature = "ssr")]
pub mod service;
#[cfg(feature = "ssr")]
pub mod snapshots;
