//! Integration tests: the real server over real HTTP against a real PostgreSQL.

mod harness;

mod accounts;
mod api_billing;
mod api_guard;
mod audit_log;
mod billing;
mod billing_use_cases;
mod documented;
mod faults;
mod hardening_abuse;
mod hardening_batches;
mod hardening_web;
mod job_leases;
mod leptos_app;
mod limits;
mod notification_events;
mod notifications;
mod observability;
mod orgs_and_admin;
mod platform;
mod revenue_metrics;
mod shared_caches;
mod stripe_sync;
mod usage;
mod usage_retention;
