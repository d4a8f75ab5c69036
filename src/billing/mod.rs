//! Billing: the plan catalog, and (with `ssr`) subscriptions and their lifecycle.

pub mod catalog;
