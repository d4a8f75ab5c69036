//! Organizations: the billing unit. Users belong to them through memberships with a role, which
//! they get only by accepting an invitation (or by creating the organization).
//!
//! The pages (`pages`: the dashboard and a new organization; `invitation_pages`: inviting,
//! revoking and accepting) are compiled for the server and the browser; what their server
//! functions do runs on the server (`forms`, `invitation_forms`), over the SQL in `repo` and
//! `invitation_repo`.

pub mod invitation;
pub mod invitation_pages;
pub mod model;
pub mod pages;

#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod invitation_forms;
#[cfg(feature = "ssr")]
pub mod invitation_repo;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod seats;
#[cfg(feature = "ssr")]
pub mod viewers;
