//! Integration tests: the real server over real HTTP against a real PostgreSQL.

mod harness;

mod accounts;
mod billing;
mod billing_use_cases;
mod hardening_abuse;
mod hardening_batches;
mod hardening_web;
mod leptos_app;
mod limits;
mod orgs_and_admin;
mod platform;
mod usage;
