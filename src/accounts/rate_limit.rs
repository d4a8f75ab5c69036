//! Login throttling, per account and per client address, with governor's keyed GCRA limiters.
//! The limits live in this process's memory: each instance enforces them on the requests it sees.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
}

/// A refused attempt, with how long until the next one may go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

impl LoginLimiter {
    /// `per_account` and `per_ip` attempts per minute, each allowed as one burst.
    pub fn new(per_account: u32, per_ip: u32) -> Arc<Self> {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            per_account: RateLimiter::keyed(quota(per_account)),
            per_ip: RateLimiter::keyed(quota(per_ip)),
        })
    }

    /// Counts one attempt for this address and account (the normalized email).
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Throttled> {
        let now = DefaultClock::default().now();
        // The address is checked first so that a flood against many accounts from one address
        // does not use up those accounts' own allowance.
        self.per_ip.check_key(&ip).map_err(|n| Throttled {
            retry_after: n.wait_time_from(now),
        })?;
        self.per_account
            .check_key(&account.to_owned())
            .map_err(|n| Throttled {
                retry_after: n.wait_time_from(now),
            })
    }

    /// Forgets keys whose allowance has fully refilled, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_throttled_after_its_allowance() {
        let limiter = LoginLimiter::new(3, 100);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(limiter.check(ip, "ada@example.com").is_ok());
        }
        let refused = limiter.check(ip, "ada@example.com").expect_err("throttled");
        assert!(refused.retry_after > Duration::ZERO);
        // Another account from the same address is unaffected.
        assert!(limiter.check(ip, "bob@example.com").is_ok());
    }

    #[test]
    fn an_address_is_throttled_across_accounts() {
        let limiter = LoginLimiter::new(100, 2);
        let ip = IpAddr::from([10, 0, 0, 2]);
        assert!(limiter.check(ip, "a@example.com").is_ok());
        assert!(limiter.check(ip, "b@example.com").is_ok());
        assert!(limiter.check(ip, "c@example.com").is_err());
        assert!(limiter
            .check(IpAddr::from([10, 0, 0, 3]), "c@example.com")
            .is_ok());
    }
}
