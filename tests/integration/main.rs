//! Integration tests: the real server over real HTTP against a real PostgreSQL.

mod harness;

mod accounts;
mod billing;
mod emulator;
mod hardening_web;
mod orgs_and_admin;
mod platform;
mod usage;
