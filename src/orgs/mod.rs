//! Organizations: the billing unit. Users belong to them through memberships with a role, which
//! they get only by accepting an invitation (or by creating the organization).

pub mod invitation;
pub mod model;

#[cfg(feature = "ssr")]
pub mod invitation_pages;
#[cfg(feature = "ssr")]
pub mod invitation_repo;
#[cfg(feature = "ssr")]
pub mod pages;
#[cfg(feature = "ssr")]
pub mod repo;
