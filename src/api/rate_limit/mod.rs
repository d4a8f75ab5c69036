//! Rate limits of the JSON API, per API key and per route class (`usage`, `read`, `billing`),
//! configured by `API_RATE_LIMIT_*`. Enforced in memory by governor; instances sharing a
//! database announce themselves with a heartbeat and each enforces limit ÷ live instances, so
//! together they never let more through than the limit (see the README's "Rate limits").

pub mod instances;
pub mod layer;
pub mod limiter;
pub mod policy;

pub use limiter::{Limits, RateLimits};
pub use policy::{Class, Limit};
