//! Accounts: who a person is (email and password), how they prove it, and their session.

pub mod model;

#[cfg(feature = "ssr")]
pub mod forms;
pub mod pages;
#[cfg(feature = "ssr")]
pub mod password;
#[cfg(feature = "ssr")]
pub mod rate_limit;
#[cfg(feature = "ssr")]
pub mod repo;
#[cfg(feature = "ssr")]
pub mod session;
#[cfg(feature = "ssr")]
pub mod session_store;
