//! Staying in sync with Stripe: the catch-up from Stripe's Events API (events we never received
//! go into the webhook inbox, so each applies once), the drift check (our projection compared
//! with Stripe, each difference recorded with its cause, repaired with one click or cleared when
//! it heals), and the platform admins' repair actions. The jobs run on one instance at a time
//! (`db::lease`). Services here are server only; the admin drift page is in `pages`.

#[cfg(feature = "ssr")]
pub mod catch_up;
#[cfg(feature = "ssr")]
pub mod drift;
#[cfg(feature = "ssr")]
pub mod drift_check;
#[cfg(feature = "ssr")]
pub mod forms;
#[cfg(feature = "ssr")]
pub mod jobs;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod repair;
