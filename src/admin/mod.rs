//! Pages for platform operators: every organization's billing, the webhook event log with replay.
//! Each handler refuses (403) anyone without the platform admin flag.

pub mod pages;
pub mod queries;
