//! Organizations: the billing unit. Users belong to them through memberships with a role.

pub mod model;

#[cfg(feature = "ssr")]
pub mod pages;
#[cfg(feature = "ssr")]
pub mod repo;
