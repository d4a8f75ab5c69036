//! Login throttling that slows an attacker down without locking the owner out. Limits are keyed
//! on the client address, and on the (account, address) pair rather than on the account alone:
//! wrong passwords from one address never use up the owner's attempts from theirs. Each pair also
//! backs off exponentially after a few failures in a row, and a success clears its record.
//! Everything lives in this process's memory: each instance enforces it on the requests it sees.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// Failures in a row a pair may have before it must wait.
const FREE_FAILURES: u32 = 3;
/// The longest a pair is made to wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

type Pair = (String, IpAddr);

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    not_before: Instant,
}

pub struct LoginLimiter {
    per_pair: DefaultKeyedRateLimiter<Pair>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    backoff: Mutex<HashMap<Pair, Failures>>,
}

/// A refused attempt, with how long until the next one may go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after: Duration,
}

/// The wait after `count` failures in a row: none for the first few, then 1 s, 2 s, 4 s, ...
fn backoff_after(count: u32) -> Duration {
    if count < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (count - FREE_FAILURES).min(20);
    Duration::from_secs(1u64 << doublings).min(MAX_BACKOFF)
}

impl LoginLimiter {
    /// `per_account` attempts per minute for one account from one address, and `per_ip` per
    /// minute from one address across accounts, each allowed as one burst.
    pub fn new(per_account: u32, per_ip: u32) -> Arc<Self> {
        let quota =
            |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN));
        Arc::new(Self {
            per_pair: RateLimiter::keyed(quota(per_account)),
            per_ip: RateLimiter::keyed(quota(per_ip)),
            backoff: Mutex::new(HashMap::new()),
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
        let pair = (account.to_owned(), ip);
        if let Some(wait) = self.backoff_wait(&pair, Instant::now()) {
            return Err(Throttled { retry_after: wait });
        }
        self.per_pair.check_key(&pair).map_err(|n| Throttled {
            retry_after: n.wait_time_from(now),
        })
    }

    fn backoff_wait(&self, pair: &Pair, now: Instant) -> Option<Duration> {
        let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff
            .get(pair)
            .filter(|f| f.not_before > now)
            .map(|f| f.not_before - now)
    }

    /// A wrong password for this account from this address: the next attempt may have to wait.
    pub fn failed(&self, ip: IpAddr, account: &str) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        let entry = backoff.entry((account.to_owned(), ip)).or_insert(Failures {
            count: 0,
            not_before: Instant::now(),
        });
        entry.count = entry.count.saturating_add(1);
        entry.not_before = Instant::now() + backoff_after(entry.count);
    }

    /// A successful login clears the pair's failures.
    pub fn succeeded(&self, ip: IpAddr, account: &str) {
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff.remove(&(account.to_owned(), ip));
    }

    /// Forgets keys whose allowance has fully refilled and failures long past, so memory stays
    /// bounded.
    pub fn forget_idle(&self) {
        self.per_pair.retain_recent();
        self.per_ip.retain_recent();
        let now = Instant::now();
        let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
        backoff.retain(|_, f| f.not_before + MAX_BACKOFF > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_account_is_throttled_from_one_address_but_not_from_another() {
        let limiter = LoginLimiter::new(3, 100);
        let attacker = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(limiter.check(attacker, "ada@example.com").is_ok());
        }
        let refused = limiter
            .check(attacker, "ada@example.com")
            .expect_err("throttled");
        assert!(refused.retry_after > Duration::ZERO);
        // Another account from the same address is unaffected, and so is the owner at home.
        assert!(limiter.check(attacker, "bob@example.com").is_ok());
        assert!(limiter
            .check(IpAddr::from([192, 0, 2, 7]), "ada@example.com")
            .is_ok());
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

    #[test]
    fn failures_in_a_row_back_off_exponentially_and_a_success_clears_them() {
        assert_eq!(backoff_after(1), Duration::ZERO);
        assert_eq!(backoff_after(FREE_FAILURES), Duration::from_secs(1));
        assert_eq!(backoff_after(FREE_FAILURES + 3), Duration::from_secs(8));
        assert_eq!(backoff_after(u32::MAX), MAX_BACKOFF);

        let limiter = LoginLimiter::new(100, 100);
        let ip = IpAddr::from([10, 0, 0, 4]);
        for _ in 0..FREE_FAILURES + 2 {
            limiter.failed(ip, "ada@example.com");
        }
        let refused = limiter
            .check(ip, "ada@example.com")
            .expect_err("backing off");
        assert!(refused.retry_after > Duration::from_secs(2));
        assert!(limiter
            .check(IpAddr::from([10, 0, 0, 5]), "ada@example.com")
            .is_ok());
        limiter.succeeded(ip, "ada@example.com");
        assert!(limiter.check(ip, "ada@example.com").is_ok());
    }
}
