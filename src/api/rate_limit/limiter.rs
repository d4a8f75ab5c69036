//! The API's rate limits in this instance's memory: one keyed governor limiter (GCRA) per route
//! class, keyed by API key (or by client address for calls without a valid key). Each limiter
//! holds the class's whole quota, and every request costs as many cells as there are live
//! instances (see [`super::instances`]), so each instance lets through its share, limit ÷
//! instances, and together they stay within the limit. No database statement per request.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use super::policy::{Class, Limit};

/// Whose allowance a request uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Holder {
    Key(Uuid),
    /// Calls without a valid key (the public documents, wrong keys), by client address.
    Address(IpAddr),
}

type Keyed =
    RateLimiter<Holder, DefaultKeyedStateStore<Holder>, DefaultClock, StateInformationMiddleware>;

struct ClassLimiter {
    quota: u32,
    window: Duration,
    /// How long one cell takes to come back (window ÷ quota).
    replenish: Duration,
    limiter: Keyed,
}

/// The limits of every class, as configured.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub usage: Limit,
    pub read: Limit,
    pub billing: Limit,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            usage: Limit::every(25_000, 1),
            read: Limit::every(2_000, 1),
            billing: Limit::every(100, 60),
        }
    }
}

/// What a request's class allowed it, for its answer's headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub class: Class,
    pub quota: u32,
    pub window: Duration,
    /// Requests this instance will still accept now.
    pub remaining: u32,
    /// Until the whole quota is available again.
    pub reset: Duration,
    /// `Some(wait)` when refused: when a request fits again.
    pub refused: Option<Duration>,
}

pub struct RateLimits {
    classes: [Option<ClassLimiter>; 3],
    /// Live instances sharing the database (at least 1), kept by the heartbeat.
    instances: Arc<AtomicU32>,
    clock: DefaultClock,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self::new(Limits::default())
    }
}

impl RateLimits {
    pub fn new(limits: Limits) -> Self {
        let class = |limit: Limit| match limit {
            Limit::Off => None,
            Limit::Every { quota, window } => {
                let burst = NonZeroU32::new(quota)?;
                let replenish = window.checked_div(quota)?.max(Duration::from_nanos(1));
                let shape = Quota::with_period(replenish)?.allow_burst(burst);
                Some(ClassLimiter {
                    quota,
                    window,
                    replenish,
                    limiter: RateLimiter::keyed(shape)
                        .with_middleware::<StateInformationMiddleware>(),
                })
            }
        };
        Self {
            classes: [
                class(limits.usage),
                class(limits.read),
                class(limits.billing),
            ],
            instances: Arc::new(AtomicU32::new(1)),
            clock: DefaultClock::default(),
        }
    }

    /// The live-instance count the heartbeat keeps up to date.
    pub fn instances(&self) -> Arc<AtomicU32> {
        self.instances.clone()
    }

    /// Takes one request of `class` from `holder`'s allowance; `None` when the class is off.
    pub fn check(&self, class: Class, holder: Holder) -> Option<Verdict> {
        let limit = self.classes[class.index()].as_ref()?;
        // More instances than the quota: each still lets one request a window through.
        let share = self.instances.load(Ordering::Relaxed).clamp(1, limit.quota);
        let cost = NonZeroU32::new(share).unwrap_or(NonZeroU32::MIN);
        let verdict = |remaining_cells: u32, refused: Option<Duration>| Verdict {
            class,
            quota: limit.quota,
            window: limit.window,
            remaining: remaining_cells / cost.get(),
            reset: limit.replenish * limit.quota.saturating_sub(remaining_cells),
            refused,
        };
        Some(match limit.limiter.check_key_n(&holder, cost) {
            Ok(Ok(state)) => verdict(state.remaining_burst_capacity(), None),
            Ok(Err(not_until)) => {
                let wait = not_until.wait_time_from(self.clock.now());
                Verdict {
                    reset: wait,
                    ..verdict(0, Some(wait.max(Duration::from_millis(1))))
                }
            }
            // Cannot happen (the cost never exceeds the burst); refuse for a window if it does.
            Err(_) => Verdict {
                reset: limit.window,
                ..verdict(0, Some(limit.window))
            },
        })
    }

    /// Forgets holders whose allowance is full again, so memory stays bounded.
    pub fn forget_idle(&self) {
        for limit in self.classes.iter().flatten() {
            limit.limiter.retain_recent();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Holder {
        Holder::Key(Uuid::new_v4())
    }

    #[test]
    fn a_key_gets_its_quota_then_waits_and_others_are_unaffected() {
        let limits = RateLimits::new(Limits {
            read: Limit::every(3, 3600),
            ..Limits::default()
        });
        let (a, b) = (key(), key());
        let remaining: Vec<u32> = (0..3)
            .map(|_| limits.check(Class::Read, a).expect("limited").remaining)
            .collect();
        assert_eq!(remaining, vec![2, 1, 0]);
        let refused = limits.check(Class::Read, a).expect("limited");
        let wait = refused.refused.expect("the fourth is refused");
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        assert_eq!(limits.check(Class::Read, b).expect("limited").refused, None);
        // Another class has its own allowance.
        assert_eq!(
            limits.check(Class::Usage, a).expect("limited").refused,
            None
        );
    }

    #[test]
    fn with_two_instances_each_takes_half() {
        let limits = RateLimits::new(Limits {
            billing: Limit::every(10, 3600),
            ..Limits::default()
        });
        limits.instances().store(2, Ordering::Relaxed);
        let a = key();
        let allowed = (0..10)
            .filter(|_| {
                limits
                    .check(Class::Billing, a)
                    .is_some_and(|v| v.refused.is_none())
            })
            .count();
        assert_eq!(allowed, 5);
    }

    #[test]
    fn the_default_usage_limit_stays_above_what_the_usage_benchmark_drives() {
        // `scripts/bench-usage` drives one hot organization's single key at 10,779 actions/s on
        // the 2-core development machine (README, Benchmarks); keep twice that as headroom.
        let Limit::Every { quota, window } = Limits::default().usage else {
            panic!("usage is limited by default");
        };
        assert!(f64::from(quota) / window.as_secs_f64() >= 2.0 * 10_779.0);
    }

    #[test]
    fn a_class_turned_off_is_not_limited() {
        let limits = RateLimits::new(Limits {
            usage: Limit::Off,
            ..Limits::default()
        });
        assert_eq!(limits.check(Class::Usage, key()), None);
    }
}
