//! Throttles on the actions one person could repeat to abuse the portal: sign-ups and new
//! organizations per client address and per account, and invitations per organization and
//! inviter. governor's keyed GCRA limiters, in this process's memory (each instance enforces them
//! on the requests it sees), as for logins in [`crate::accounts::rate_limit`].

use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use uuid::Uuid;

use crate::accounts::rate_limit::Throttled;
use crate::config::Settings;

/// `n` events per `period`, all of them allowed as one burst, refilling evenly.
pub struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

impl<K: Hash + Eq + Clone> Keyed<K> {
    pub fn new(n: u32, period: Duration) -> Self {
        let n = NonZeroU32::new(n.max(1)).unwrap_or(NonZeroU32::MIN);
        let every = period / n.get();
        let quota = Quota::with_period(every.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(n);
        Self {
            limiter: RateLimiter::keyed(quota),
        }
    }

    /// Counts one event for `key`, or says how long until the next one may go through.
    pub fn check(&self, key: &K) -> Result<(), Throttled> {
        let now = DefaultClock::default().now();
        self.limiter.check_key(key).map_err(|n| Throttled {
            retry_after: n.wait_time_from(now),
        })
    }

    fn forget_idle(&self) {
        self.limiter.retain_recent();
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

pub struct Throttles {
    pub signups_per_ip: Keyed<IpAddr>,
    pub orgs_per_account: Keyed<Uuid>,
    pub orgs_per_ip: Keyed<IpAddr>,
    /// Keyed on (organization, inviter): one inviter cannot use up a colleague's allowance.
    pub invitations: Keyed<(Uuid, Uuid)>,
}

impl Throttles {
    pub fn new(settings: &Settings) -> Self {
        Self {
            signups_per_ip: Keyed::new(settings.signups_per_ip_per_hour, HOUR),
            orgs_per_account: Keyed::new(settings.orgs_per_account_per_day, DAY),
            orgs_per_ip: Keyed::new(settings.orgs_per_ip_per_hour, HOUR),
            invitations: Keyed::new(settings.invitations_per_hour, HOUR),
        }
    }

    /// Forgets keys whose allowance has fully refilled, so memory stays bounded.
    pub fn forget_idle(&self) {
        self.signups_per_ip.forget_idle();
        self.orgs_per_account.forget_idle();
        self.orgs_per_ip.forget_idle();
        self.invitations.forget_idle();
    }
}

/// "Try again in 3 minutes": a wait in words for a refusal's message.
pub fn wait_in_words(wait: Duration) -> String {
    let seconds = wait.as_secs().max(1);
    match seconds {
        1 => "1 second".to_owned(),
        s if s < 120 => format!("{s} seconds"),
        s if s < 7200 => format!("{} minutes", s.div_ceil(60)),
        s => format!("{} hours", s.div_ceil(3600)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_burst_then_waits() {
        let limiter = Keyed::new(2, HOUR);
        let ip = IpAddr::from([10, 0, 0, 1]);
        assert!(limiter.check(&ip).is_ok());
        assert!(limiter.check(&ip).is_ok());
        let refused = limiter.check(&ip).expect_err("third is throttled");
        // One event refills every half hour.
        assert!(refused.retry_after > Duration::from_secs(25 * 60));
        assert!(limiter.check(&IpAddr::from([10, 0, 0, 2])).is_ok());
    }

    #[test]
    fn waits_read_naturally() {
        assert_eq!(wait_in_words(Duration::from_millis(10)), "1 second");
        assert_eq!(wait_in_words(Duration::from_secs(42)), "42 seconds");
        assert_eq!(wait_in_words(Duration::from_secs(1799)), "30 minutes");
        assert_eq!(wait_in_words(Duration::from_secs(86_400)), "24 hours");
    }
}
