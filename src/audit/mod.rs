//! The audit log: who changed what in billing, when, with the values before and after. Rows are
//! written by database triggers (migration `20261203003001_audit_log`) in the same transaction as
//! the change, so no path can skip them; the portal only says who is acting ([`context`]).
//! Nothing in the portal updates or deletes a row (the table refuses it). Owners read their
//! organization's rows, platform admins everyone's with filters ([`pages`]).

#[cfg(feature = "ssr")]
pub mod context;
#[cfg(feature = "ssr")]
pub mod forms;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod queries;
