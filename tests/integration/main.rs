//! Integration tests: the real server over real HTTP against a real PostgreSQL.

mod harness;

mod accounts;
mod emulator;
mod orgs_and_admin;
mod platform;
