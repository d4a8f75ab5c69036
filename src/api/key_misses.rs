//! Throttling of API key guessing, per client address: wrong keys are counted with a keyed
//! governor limiter (`API_KEY_MISSES_PER_IP` a minute, allowed as one burst), and an address
//! that has used up its allowance is answered 429 before its key is even looked up, so a guesser
//! costs neither a query nor a write. Only misses count: a good key is never throttled by its
//! own use, and many organizations' keys from one server do not add up. A good key already
//! verified (cached) keeps working from a throttled address; an unverified one waits like a
//! wrong one, since telling them apart would need the database. In this process's memory: each
//! instance limits the requests it sees.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use moka::sync::Cache;

type MissCounter =
    RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock, StateInformationMiddleware>;

pub struct KeyMissLimiter {
    misses: MissCounter,
    /// Addresses whose allowance is used up, with when their next miss may be looked up.
    blocked: Cache<IpAddr, Instant>,
    /// How long one miss takes to be forgiven (a minute divided by the allowance).
    replenish: Duration,
}

impl KeyMissLimiter {
    /// `per_minute` wrong keys a minute from one address (at least 1).
    pub fn new(per_minute: u32) -> Self {
        let n = NonZeroU32::new(per_minute.max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_minute(n);
        Self {
            misses: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
            blocked: Cache::builder()
                .max_capacity(100_000)
                // A block never lasts longer than one replenish interval, at most a minute.
                .time_to_live(Duration::from_secs(60))
                .build(),
            replenish: quota.replenish_interval(),
        }
    }

    /// How long this address must wait before a key it sends is looked up; `None` when it may
    /// go ahead. Reads memory only.
    pub fn wait(&self, ip: IpAddr) -> Option<Duration> {
        let until = self.blocked.get(&ip)?;
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            self.blocked.invalidate(&ip);
            return None;
        }
        Some(left)
    }

    /// Counts a wrong key from this address. Once its allowance is used up, the address waits
    /// (see [`wait`](Self::wait)) until one miss is forgiven.
    pub fn missed(&self, ip: IpAddr) {
        let now = Instant::now();
        match self.misses.check_key(&ip) {
            Ok(state) if state.remaining_burst_capacity() > 0 => {}
            Ok(_) => self.blocked.insert(ip, now + self.replenish),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                self.blocked
                    .insert(ip, now + wait.max(Duration::from_millis(1)));
            }
        }
    }

    /// Forgets addresses whose allowance has fully refilled, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.misses.retain_recent();
        self.blocked.run_pending_tasks();
    }
}

impl Default for KeyMissLimiter {
    fn default() -> Self {
        Self::new(30)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_allowance_of_misses() {
        let limiter = KeyMissLimiter::new(3);
        let ip = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert_eq!(limiter.wait(ip), None);
            limiter.missed(ip);
        }
        let wait = limiter.wait(ip).expect("throttled after 3 misses");
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(20),
            "{wait:?}"
        );
        // Another address is unaffected.
        assert_eq!(limiter.wait(IpAddr::from([10, 0, 0, 2])), None);
    }

    #[test]
    fn a_block_ends_when_a_miss_is_forgiven() {
        let limiter = KeyMissLimiter::new(1);
        let ip = IpAddr::from([10, 0, 0, 3]);
        limiter.missed(ip);
        assert!(limiter.wait(ip).is_some());
        limiter.blocked.insert(ip, Instant::now());
        assert_eq!(limiter.wait(ip), None);
    }
}
