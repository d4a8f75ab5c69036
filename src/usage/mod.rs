//! Usage metering and prepaid credits: the consumption decision, periods, credit arithmetic,
//! the credit forms' typed input, warnings and entitlements (pure), the usage card of the
//! organization's dashboard (`dashboard_card`), and with `ssr` the group-commit writer of
//! actions, the credit ledger, the credit use cases (`credit_service`: buying packs, auto top-up
//! settings, admin adjustments, settling a paid Checkout), refunds, auto top-up, reconciliation
//! and what the pages' server functions do (`forms`). `summary` is the usage per meter and day
//! the API answers. The usage and credits pages (`pages`) compile for the server and the
//! browser, as does the gauge block (`gauge_usage`); gauges' values and setting them within a
//! plan's limit are in `gauges` (server only).

pub mod chart;
pub mod consumption;
pub mod credit_input;
pub mod credits;
pub mod dashboard_card;
pub mod entitlements;
pub mod gauge_usage;
pub mod pages;
pub mod period;
pub mod summary;
pub mod warnings;

#[cfg(feature = "ssr")]
pub mod credit_service;
#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod gauges;
#[cfg(feature = "ssr")]
pub mod ledger;
#[cfg(feature = "ssr")]
pub mod reconcile;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod retention;
#[cfg(feature = "ssr")]
pub mod top_up;
#[cfg(feature = "ssr")]
pub mod writer;
